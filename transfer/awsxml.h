/*
 * awsxml.h - private to transfer/: the small expat front that the S3
 * backend and the STS credential provider use to read XML answers
 * (ListBucketResult, InitiateMultipartUploadResult, Error, ...).  The
 * caller gets one callback per closing element with the element's path
 * from the root ("ListBucketResult/Contents/Key") and its text content;
 * namespaces prefixes are not expected in these documents.
 */
#ifndef SPOTRUN_XFER_AWSXML_H
#define SPOTRUN_XFER_AWSXML_H

#include <stddef.h>

/* path: '/'-joined element names from the root; text: the element's own
 * character data (NUL-terminated, "" for containers).  Return nonzero to stop. */
typedef int (*xfer_awsxml_cb)(void *ud, const char *path, const char *text);

/* Parses buf; 0 on success, -1 on malformed XML or when cb stopped. */
int xfer_awsxml_parse(const char *buf, size_t len, xfer_awsxml_cb cb, void *ud);

/* The Code and Message of an S3/STS <Error> document (either may be ""). */
struct xfer_awsxml_error {
	char code[64];
	char message[256];
};
/* 0 if buf is an error document (root Error, or ErrorResponse/Error), else -1. */
int xfer_awsxml_error(const char *buf, size_t len, struct xfer_awsxml_error *out);

#endif
