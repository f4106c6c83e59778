/* SPDX-License-Identifier: MIT */
/* ringcast_stat(): what the daemon knows about its topics, for `ringcast stat`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

void ringcast_stat_free(struct ringcast_topic_stat *stats, size_t n)
{
	size_t i;

	if (!stats)
		return;
	for (i = 0; i < n; i++)
		free(stats[i].subs);
	free(stats);
}

static int add_topic(struct ringcast_topic_stat **arr, size_t *n, size_t *cap,
		     const struct rc_msg *m)
{
	struct ringcast_topic_stat *st;
	uint32_t i;

	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		struct ringcast_topic_stat *a = realloc(*arr, c * sizeof(*a));

		if (!a)
			return -ENOMEM;
		*arr = a;
		*cap = c;
	}
	st = &(*arr)[*n];
	memset(st, 0, sizeof(*st));
	memcpy(st->topic, m->stat_topic.topic, m->stat_topic.topic_len);
	st->topic_len = m->stat_topic.topic_len;
	st->capacity = m->stat_topic.capacity;
	st->publishers = m->stat_topic.publishers;
	st->messages = m->stat_topic.messages ? m->stat_topic.messages - 1 : 0; /* seqs start at 1 */
	st->bytes = m->stat_topic.tail;
	st->n_subs = m->stat_topic.n_subs;
	if (st->n_subs) {
		st->subs = calloc(st->n_subs, sizeof(*st->subs));
		if (!st->subs)
			return -ENOMEM;
	}
	for (i = 0; i < m->stat_topic.n_subs; i++) {
		struct rc_stat_sub s;

		rc_proto_stat_sub(m, i, &s);
		st->subs[i] = (struct ringcast_sub_stat){
			.client_id = s.client_id, .pid = s.pid, .uid = s.uid,
			.state = (int)s.state, .lag_bytes = s.lag,
			.delivered = s.delivered, .lost = s.lost,
		};
		st->lost += s.lost;
	}
	(*n)++;
	return 0;
}

int ringcast_stat(struct ringcast *rc, const char *topic, struct ringcast_topic_stat **out,
		  size_t *nout)
{
	struct rc_msg req = { .type = RC_MSG_STAT }, rep;
	struct ringcast_topic_stat *arr = NULL;
	size_t n = 0, cap = 0, len = 0;
	int ret;

	if (!rc || !out || !nout)
		return -EINVAL;
	if (topic) {
		ret = rc_topic_check(topic, &len);
		if (ret < 0)
			return ret;
		req.topic.topic = topic;
		req.topic.topic_len = (uint16_t)len;
	}
	ret = rc_client_request(rc, &req, &rep, NULL, NULL);
	while (ret == 0 && rep.type == RC_MSG_STAT_TOPIC) {
		ret = add_topic(&arr, &n, &cap, &rep);
		if (ret == 0)
			ret = rc_client_recv(rc, req.req, &rep, NULL, NULL);
	}
	if (ret == 0 && rep.type != RC_MSG_STAT_END)
		ret = -EPROTO;
	if (ret < 0) {
		ringcast_stat_free(arr, n);
		return ret;
	}
	*out = arr;
	*nout = n;
	return 0;
}
