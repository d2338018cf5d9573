/*
 * awsxml.c - XML answers of S3-style services through expat (see
 * awsxml.h): keeps a stack of element names and the current element's
 * text, and reports each element as it closes.  Text is capped at 64 KiB
 * per element and depth at 16; deeper or longer input is an error, never
 * an overflow.
 */
#include "awsxml.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AWSXML_PATH_MAX 512
#define AWSXML_TEXT_MAX (64 * 1024)
#define AWSXML_DEPTH_MAX 16

struct awsxml {
	XML_Parser p;
	xfer_awsxml_cb cb;
	void *ud;
	char path[AWSXML_PATH_MAX];
	size_t plen[AWSXML_DEPTH_MAX + 1];	/* path length at each depth */
	int depth;
	char *text;
	size_t tlen;
	int failed;
};

static void awsxml_stop(struct awsxml *x)
{
	x->failed = 1;
	XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL awsxml_start(void *u, const XML_Char *name, const XML_Char **attrs)
{
	struct awsxml *x = u;
	size_t cur = x->plen[x->depth], n = strlen(name);

	if (x->depth >= AWSXML_DEPTH_MAX || cur + n + 2 > sizeof(x->path)) {
		awsxml_stop(x);
		return;
	}
	if (cur)
		x->path[cur++] = '/';
	memcpy(x->path + cur, name, n + 1);
	x->plen[++x->depth] = cur + n;
	x->tlen = 0;
	x->text[0] = '\0';
}

static void XMLCALL awsxml_end(void *u, const XML_Char *name)
{
	struct awsxml *x = u;

	if (x->cb(x->ud, x->path, x->text)) {
		awsxml_stop(x);
		return;
	}
	x->depth--;
	x->path[x->plen[x->depth]] = '\0';
	x->tlen = 0;
	x->text[0] = '\0';
}

static void XMLCALL awsxml_chars(void *u, const XML_Char *s, int len)
{
	struct awsxml *x = u;

	if (x->tlen + (size_t)len >= AWSXML_TEXT_MAX) {
		awsxml_stop(x);
		return;
	}
	memcpy(x->text + x->tlen, s, (size_t)len);
	x->tlen += (size_t)len;
	x->text[x->tlen] = '\0';
}

int xfer_awsxml_parse(const char *buf, size_t len, xfer_awsxml_cb cb, void *ud)
{
	struct awsxml x = { 0 };
	int rc = -1;

	x.cb = cb;
	x.ud = ud;
	if (!(x.text = malloc(AWSXML_TEXT_MAX)) || !(x.p = XML_ParserCreate(NULL)))
		goto out;
	x.text[0] = '\0';
	XML_SetUserData(x.p, &x);
	XML_SetElementHandler(x.p, awsxml_start, awsxml_end);
	XML_SetCharacterDataHandler(x.p, awsxml_chars);
	if (XML_Parse(x.p, buf, (int)len, XML_TRUE) == XML_STATUS_OK && !x.failed)
		rc = 0;
out:
	if (x.p)
		XML_ParserFree(x.p);
	free(x.text);
	return rc;
}

struct awsxml_err {
	struct xfer_awsxml_error *out;
	int is_error;
};

static int awsxml_error_cb(void *ud, const char *path, const char *text)
{
	struct awsxml_err *e = ud;
	const char *leaf = strrchr(path, '/');

	if (!strcmp(path, "Error") || !strcmp(path, "ErrorResponse/Error"))
		e->is_error = 1;
	if (!leaf || (strncmp(path, "Error/", 6) && strncmp(path, "ErrorResponse/Error/", 20)))
		return 0;
	if (!strcmp(leaf, "/Code"))
		snprintf(e->out->code, sizeof(e->out->code), "%s", text);
	else if (!strcmp(leaf, "/Message"))
		snprintf(e->out->message, sizeof(e->out->message), "%s", text);
	return 0;
}

int xfer_awsxml_error(const char *buf, size_t len, struct xfer_awsxml_error *out)
{
	struct awsxml_err e = { out, 0 };

	memset(out, 0, sizeof(*out));
	if (!buf || !len || xfer_awsxml_parse(buf, len, awsxml_error_cb, &e))
		return -1;
	return e.is_error ? 0 : -1;
}
