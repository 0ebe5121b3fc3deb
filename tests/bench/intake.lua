-- wrk script: POST /v1/orders with a unique reference per request.
-- usage: FEEGATE_API_KEY=... wrk -t2 -c64 -d20s -s tests/bench/intake.lua $FEEGATE_URL
local counter = 0
local threads = {}
local key = os.getenv("FEEGATE_API_KEY")
local agency = os.getenv("FEEGATE_AGENCY") or "XNC"
local run = tostring(os.time())

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local ref = string.format("WRK-%s-%d-%d", run, tid, counter)
  local body = string.format('{"reference":"%s","agency":"%s","description":"Lệ phí cấp hộ chiếu",' ..
    '"amount":200000,"return_url":"https://portal.example/return"}', ref, agency)
  return wrk.format("POST", "/v1/orders", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, body)
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
