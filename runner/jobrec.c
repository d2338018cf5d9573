/*
 * jobrec.c - the job record (<job>/job.json: created, command, runs[],
 * migrations[]) and event objects (<job>/events/<time>-<host>.json).  Both
 * are small JSON documents written with a read-modify-write; two runners of
 * one job at the same moment may lose one run entry (never a checkpoint:
 * those are committed separately with create-only manifests).
 */
#include "runner.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "xfer.h"

#define JOBREC_MAX (4u << 20)

/* compact: event key times, in microseconds and strictly increasing within
 * this process, so two events of one host never share a key. */
static void jobrec_time(char *buf, size_t n, int compact)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static long long last;
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	if (compact) {
		long long us = (long long)tv.tv_sec * 1000000 + tv.tv_usec;
		pthread_mutex_lock(&mu);
		if (us <= last)
			us = last + 1;
		last = us;
		pthread_mutex_unlock(&mu);
		tv.tv_sec = (time_t)(us / 1000000);
		tv.tv_usec = (suseconds_t)(us % 1000000);
	}
	gmtime_r(&tv.tv_sec, &tm);
	size_t k = strftime(buf, n, compact ? "%Y%m%dT%H%M%S" : "%Y-%m-%dT%H:%M:%S", &tm);
	if (compact)
		snprintf(buf + k, n - k, ".%06dZ", (int)tv.tv_usec);
	else
		snprintf(buf + k, n - k, ".%03dZ", (int)(tv.tv_usec / 1000));
}

json_t *run_jobrec_read(struct xfer_store *st, const char *job)
{
	char key[512], *buf = NULL;
	size_t len = 0;
	json_t *o = NULL;

	snprintf(key, sizeof(key), "%s/job.json", job);
	if (xfer_get(st, key, &buf, &len, JOBREC_MAX) == 0)
		o = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (json_is_object(o))
		return o;
	json_decref(o);
	return NULL;
}

static json_t *jobrec_load(struct xfer_store *st, const char *job)
{
	char now[40];
	json_t *o = run_jobrec_read(st, job);

	if (o)
		return o;
	jobrec_time(now, sizeof(now), 0);
	return json_pack("{s:i, s:s, s:s, s:[], s:[]}", "version", 1, "job", job, "created", now,
			 "runs", "migrations");
}

static int jobrec_save(struct xfer_store *st, const char *key, json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc;

	if (!s)
		return EX_SOFTWARE;
	rc = xfer_put(st, key, s, strlen(s), 0);
	free(s);
	return rc;
}

/* Appends (index < 0) or updates run entry index (keys of run replace the
 * entry's, other keys stay); returns its index. */
int run_jobrec_run(struct xfer_store *st, const char *job, char **argv, int index, json_t *run)
{
	char key[512];
	json_t *o, *runs, *cmd;
	int rc = -1;

	snprintf(key, sizeof(key), "%s/job.json", job);
	o = jobrec_load(st, job);
	if (!o)
		goto out;
	if (argv && !json_object_get(o, "command")) {
		cmd = json_array();
		for (char **a = argv; *a; a++)
			json_array_append_new(cmd, json_string(*a));
		json_object_set_new(o, "command", cmd);
	}
	runs = json_object_get(o, "runs");
	if (!json_is_array(runs)) {
		runs = json_array();
		json_object_set_new(o, "runs", runs);
	}
	if (index >= 0 && (size_t)index < json_array_size(runs)) {
		/* merge: the run's end and the record thread's summary (notices,
		 * pushes, restarts) each add their keys to the same entry */
		json_t *old = json_array_get(runs, (size_t)index);
		if (json_is_object(old))
			json_object_update(old, run);
		else
			json_array_set(runs, (size_t)index, run);
		rc = index;
	} else {
		json_array_append(runs, run);
		rc = (int)json_array_size(runs) - 1;
	}
	if (jobrec_save(st, key, o))
		rc = -1;
out:
	json_decref(o);
	return rc;
}

int run_event_put(struct xfer_store *st, const char *job, const char *host, json_t *ev)
{
	char key[600], t[40], *s;
	int rc;

	jobrec_time(t, sizeof(t), 1);
	snprintf(key, sizeof(key), "%s/events/%s-%.200s.json", job, t, host);
	s = json_dumps(ev, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!s)
		return EX_SOFTWARE;
	rc = xfer_put(st, key, s, strlen(s), 0);
	free(s);
	return rc;
}

void run_now_iso(char *buf, size_t n)
{
	jobrec_time(buf, n, 0);
}

/* Entries in the job record's runs[] (0 when there is no record): earlier
 * starts of the job on any machine. */
int run_jobrec_count(struct xfer_store *st, const char *job)
{
	char key[512], *buf = NULL;
	size_t len = 0;
	json_t *o = NULL;
	int n = 0;

	snprintf(key, sizeof(key), "%s/job.json", job);
	if (xfer_get(st, key, &buf, &len, JOBREC_MAX) == 0)
		o = json_loadb(buf, len, 0, NULL);
	free(buf);
	n = (int)json_array_size(json_object_get(o, "runs"));
	json_decref(o);
	return n;
}
