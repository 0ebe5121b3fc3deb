#ifndef FEEGATE_RECEIPT_PDF_H
#define FEEGATE_RECEIPT_PDF_H
/*
 * The receipt as a PDF (cairo + pango, DejaVu fonts), with the signed receipt JSON embedded
 * in the document's Keywords as "feegate-receipt:<base64url JSON>" so that `feegate receipt
 * verify` checks a PDF offline. Rendering is slow library work, so it runs on this process's
 * one PDF thread; the loop hands it a job and gets the bytes back through a pipe.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/http.h"

#define RECEIPT_PDF_MARKER "feegate-receipt:"

/* Renders doc (stolen) and replies with the PDF (503 when the queue is full). */
void receipt_pdf_reply(struct http_req *req, json_t *doc, bool valid);

/* Renders synchronously (the thread's work, and the tests'). *out is malloc'd. */
bool receipt_pdf_render(const json_t *doc, bool valid, const char *url, unsigned char **out, size_t *len) WARN_UNUSED;

/* The signed receipt JSON embedded in a PDF made here (caller frees), or NULL. */
char *receipt_pdf_extract(const unsigned char *pdf, size_t len) WARN_UNUSED;

#endif
