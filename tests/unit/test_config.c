/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ringcastd's configuration and access control: the files
 * that implement daemon/config.h, linked from the daemon's internal
 * archive (Makefile).  config_internal.h also gives the tests the line
 * limit, rcd_lookup_id() and rcd_read_all().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../daemon/config_internal.h"
#include "ring_format.h"

#define NOBODY_UID 4242u
#define NOBODY_GID 4243u

static int parse(struct rcd_config *cfg, const char *text, char *err, size_t errlen)
{
	return rcd_config_parse(cfg, text, strlen(text), "test.conf", err, errlen);
}

/* defaults + text, failing the test with the parser's message if it refuses */
static void load(struct rcd_config *cfg, const char *text)
{
	char err[512] = "";
	int ret;

	assert_int_equal(rcd_config_defaults(cfg), 0);
	ret = parse(cfg, text, err, sizeof(err));
	if (ret)
		fail_msg("parse failed (%s): %s", strerror(-ret), err);
}

static bool allows(const struct rcd_config *cfg, const char *topic, enum rcd_acl_op op,
		   uid_t uid, gid_t gid)
{
	return rcd_acl_allows(cfg, topic, strlen(topic), op, uid, gid, NULL, 0);
}

static bool may_pub(const struct rcd_config *cfg, const char *topic, uid_t uid, gid_t gid)
{
	return allows(cfg, topic, RCD_ACL_PUBLISH, uid, gid);
}

static bool may_sub(const struct rcd_config *cfg, const char *topic, uid_t uid, gid_t gid)
{
	return allows(cfg, topic, RCD_ACL_SUBSCRIBE, uid, gid);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
	struct rcd_config cfg;
	char host[HOST_NAME_MAX + 1] = "";

	assert_int_equal(rcd_config_defaults(&cfg), 0);
	assert_string_equal(cfg.socket_path, RINGCAST_DEFAULT_SOCKET);
	assert_string_equal(cfg.socket_path, "/run/ringcast/ringcastd.sock");
	assert_string_equal(cfg.runtime_dir, "/run/ringcast");
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	assert_string_equal(cfg.node, host);
	assert_null(cfg.config_file);
	assert_null(cfg.cluster);
	assert_null(cfg.iface);
	assert_null(cfg.secret_file);
	assert_int_equal(cfg.socket_mode, 0660);
	assert_int_equal(cfg.capacity, 1u << 20);
	assert_int_equal(cfg.tether_timeout_ms, 5000);
	assert_int_equal(cfg.reap_grace_ms, 5000);
	assert_int_equal(cfg.max_topics, 4096);
	assert_int_equal(cfg.max_topics_per_uid, 0);
	assert_int_equal(cfg.max_bytes_per_uid, 0);
	assert_int_equal(cfg.topic_idle_ms, 3600000);
	assert_int_equal(cfg.log_level, 1);
	assert_false(cfg.publish.set);
	assert_false(cfg.subscribe.set);
	assert_int_equal(cfg.n_rules, 0);
	assert_null(cfg.rules);
	rcd_config_free(&cfg);
	assert_null(cfg.socket_path);
	assert_null(cfg.node);
	rcd_config_free(&cfg); /* twice is harmless */
	rcd_config_free(NULL);
}

static void test_default_acl(void **state)
{
	struct rcd_config cfg;
	uint32_t ringcast_gid;
	bool have_group = rcd_lookup_id("ringcast", false, &ringcast_gid) == 0;

	assert_int_equal(rcd_config_defaults(&cfg), 0);
	for (int op = RCD_ACL_PUBLISH; op <= RCD_ACL_SUBSCRIBE; op++) {
		assert_true(allows(&cfg, "any.topic", op, geteuid(), NOBODY_GID));
		assert_true(allows(&cfg, "any.topic", op, 0, NOBODY_GID));
		if (geteuid() != NOBODY_UID)
			assert_false(allows(&cfg, "any.topic", op, NOBODY_UID, NOBODY_GID));
		if (have_group)
			assert_true(allows(&cfg, "t", op, NOBODY_UID, ringcast_gid));
	}
	/* without the group, the list holds uids only */
	for (unsigned i = 0; i < cfg.publish.n; i++)
		if (cfg.publish.p[i].kind != RCD_P_UID)
			assert_true(have_group && cfg.publish.p[i].id == ringcast_gid);
	/* a rule that sets nothing about the ACL keeps the default */
	rcd_config_free(&cfg);
	load(&cfg, "[topic \"big.*\"]\ncapacity = 4M\n");
	assert_true(may_pub(&cfg, "big.one", 0, 0));
	assert_false(may_pub(&cfg, "big.one", NOBODY_UID, NOBODY_GID));
	rcd_config_free(&cfg);
}

/* ---- parsing every key ---- */

static const char every_key[] =
	"# a comment\n"
	"; another comment\n"
	"\n"
	"[ringcastd]\n"
	"socket = /tmp/rc-test/ringcastd.sock\n"
	"runtime-dir=/tmp/rc-test\n"
	"  node   =   a@host1   # trailing comment\n"
	"socket-mode = 0660\r\n"
	"capacity = 4M ; another trailing comment\n"
	"tether-timeout-ms = 250\n"
	"reap-grace-ms = 0\n"
	"max-topics = 7\n"
	"max-topics-per-uid = 3\n"
	"max-bytes-per-uid = 96M\n"
	"topic-idle-ms = 0\n"
	"log-level = 2\n"
	"publish = uid:1000, gid:27 user:root\n"
	"subscribe = *\n"
	"cluster = 239.192.0.1:4545\n"
	"iface = eth0\n"
	"secret-file = /etc/ringcast/secret#1\n"
	"\n"
	"[topic \"sensors.*\"]\n"
	"capacity = 64k\n"
	"tether-timeout-ms = 100\n"
	"publish = group:root\n"
	"subscribe = uid:7,uid:8\n"
	"[ topic   \"cam.[ab]\" ]  # brackets inside the pattern\n"
	"capacity = 2G\n";

static void test_parse_every_key(void **state)
{
	struct rcd_config cfg;
	const struct rcd_topic_rule *r;

	load(&cfg, every_key);
	assert_string_equal(cfg.socket_path, "/tmp/rc-test/ringcastd.sock");
	assert_string_equal(cfg.runtime_dir, "/tmp/rc-test");
	assert_string_equal(cfg.node, "a@host1");
	assert_int_equal(cfg.socket_mode, 0660);
	assert_int_equal(cfg.capacity, 4u << 20);
	assert_int_equal(cfg.tether_timeout_ms, 250);
	assert_int_equal(cfg.reap_grace_ms, 0);
	assert_int_equal(cfg.max_topics, 7);
	assert_int_equal(cfg.max_topics_per_uid, 3);
	assert_int_equal(cfg.max_bytes_per_uid, 96u << 20);
	assert_int_equal(cfg.topic_idle_ms, 0);
	assert_int_equal(cfg.log_level, 2);
	assert_true(cfg.publish.set);
	assert_int_equal(cfg.publish.n, 3);
	assert_int_equal(cfg.publish.p[0].kind, RCD_P_UID);
	assert_int_equal(cfg.publish.p[0].id, 1000);
	assert_int_equal(cfg.publish.p[1].kind, RCD_P_GID);
	assert_int_equal(cfg.publish.p[1].id, 27);
	assert_int_equal(cfg.publish.p[2].kind, RCD_P_UID);
	assert_int_equal(cfg.publish.p[2].id, 0); /* user:root */
	assert_true(cfg.subscribe.set);
	assert_int_equal(cfg.subscribe.n, 1);
	assert_int_equal(cfg.subscribe.p[0].kind, RCD_P_ANY);
	assert_string_equal(cfg.cluster, "239.192.0.1:4545");
	assert_string_equal(cfg.iface, "eth0");
	assert_string_equal(cfg.secret_file, "/etc/ringcast/secret#1");

	assert_int_equal(cfg.n_rules, 2);
	r = &cfg.rules[0];
	assert_string_equal(r->pattern, "sensors.*");
	assert_int_equal(r->capacity, 64 * 1024);
	assert_int_equal(r->tether_timeout_ms, 100);
	assert_true(r->publish.set);
	assert_int_equal(r->publish.n, 1);
	assert_int_equal(r->publish.p[0].kind, RCD_P_GID);
	assert_int_equal(r->publish.p[0].id, 0); /* group:root */
	assert_int_equal(r->subscribe.n, 2);
	assert_int_equal(r->subscribe.p[1].id, 8);
	r = &cfg.rules[1];
	assert_string_equal(r->pattern, "cam.[ab]");
	assert_int_equal(r->capacity, 1ull << 31);
	assert_int_equal(r->tether_timeout_ms, 0);
	assert_false(r->publish.set);
	assert_false(r->subscribe.set);
	rcd_config_free(&cfg);
}

static void test_parse_empty_and_no_trailing_newline(void **state)
{
	struct rcd_config cfg;
	char err[256];

	load(&cfg, "");
	assert_int_equal(cfg.n_rules, 0);
	rcd_config_free(&cfg);
	load(&cfg, "[ringcastd]\nlog-level = 0");
	assert_int_equal(cfg.log_level, 0);
	/* parsing on top keeps what is there */
	assert_int_equal(parse(&cfg, "[ringcastd]\nnode = second", err, sizeof(err)), 0);
	assert_int_equal(cfg.log_level, 0);
	assert_string_equal(cfg.node, "second");
	rcd_config_free(&cfg);
}

/* ---- sizes ---- */

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "64k", 65536 },
		{ "64K", 65536 },
		{ "1m", 1u << 20 },
		{ "1M", 1u << 20 },
		{ "2G", 2ull << 30 },
		{ "3g", 3ull << 30 },
		{ "17179869183G", 17179869183ull << 30 }, /* the largest that fits */
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "1.5M", "99999999999G", "17179869184G", "18446744073709551616",
		"-1", "+1", " 1", "1 ", "1 M", "1MB", "1KiB", "k", "M", "0x10", "1T", "12a4",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		if (rcd_parse_size(good[i].s, &v))
			fail_msg("rcd_parse_size(\"%s\") refused", good[i].s);
		if (v != good[i].v)
			fail_msg("rcd_parse_size(\"%s\") = %llu", good[i].s, (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (rcd_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("rcd_parse_size(\"%s\") accepted", bad[i]);
		assert_int_equal(v, 12345); /* untouched on error */
	}
}

static void test_capacity_limits(void **state)
{
	static const char *const good[] = { "64k", "65536", "128K", "1M", "1G", "2G" };
	static const char *const bad[] = { "96k", "32k", "4G", "0", "65537", "3M", "1.5M", "" };
	struct rcd_config cfg;
	char text[128], err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "[ringcastd]\ncapacity = %s\n", good[i]);
		load(&cfg, text);
		rcd_config_free(&cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[topic \"x\"]\ncapacity = %s\n", bad[i]);
		assert_int_equal(rcd_config_defaults(&cfg), 0);
		if (parse(&cfg, text, err, sizeof(err)) != -EINVAL)
			fail_msg("capacity '%s' accepted", bad[i]);
		assert_non_null(strstr(err, "test.conf:2: capacity: "));
		rcd_config_free(&cfg);
	}
	assert_int_equal(rcd_config_defaults(&cfg), 0);
	assert_int_equal(parse(&cfg, "[ringcastd]\ncapacity = 96k\n", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "test.conf:2: capacity: 96k is not a power of two from 64k to 2G");
	rcd_config_free(&cfg);
}

/* ---- ACLs ---- */

static void test_acl_uid_gid_any(void **state)
{
	struct rcd_config cfg;
	gid_t groups[] = { 50, 27, 60 };
	gid_t other_groups[] = { 50, 60 };

	load(&cfg,
	     "[ringcastd]\n"
	     "publish = uid:1000\n"
	     "subscribe = gid:27\n"
	     "[topic \"open.*\"]\n"
	     "publish = *\n"
	     "subscribe = *\n");
	/* uid */
	assert_true(may_pub(&cfg, "t", 1000, NOBODY_GID));
	assert_false(may_pub(&cfg, "t", 1001, NOBODY_GID));
	/* the default ACL is replaced, root included */
	assert_false(may_pub(&cfg, "t", 0, 0));
	/* a uid list says nothing about gids of the same number */
	assert_false(may_pub(&cfg, "t", NOBODY_UID, 1000));
	/* primary gid */
	assert_true(may_sub(&cfg, "t", NOBODY_UID, 27));
	assert_false(may_sub(&cfg, "t", NOBODY_UID, 28));
	assert_false(may_sub(&cfg, "t", 27, NOBODY_GID));
	/* supplementary groups */
	assert_true(rcd_acl_allows(&cfg, "t", 1, RCD_ACL_SUBSCRIBE, NOBODY_UID, NOBODY_GID,
				   groups, 3));
	assert_false(rcd_acl_allows(&cfg, "t", 1, RCD_ACL_SUBSCRIBE, NOBODY_UID, NOBODY_GID,
				    other_groups, 2));
	/* ngroups bounds the array */
	assert_false(rcd_acl_allows(&cfg, "t", 1, RCD_ACL_SUBSCRIBE, NOBODY_UID, NOBODY_GID,
				    groups, 1));
	/* publishing rights do not imply subscribing ones, nor the reverse */
	assert_false(may_sub(&cfg, "t", 1000, NOBODY_GID));
	assert_false(may_pub(&cfg, "t", NOBODY_UID, 27));
	/* anyone */
	assert_true(may_pub(&cfg, "open.x", NOBODY_UID, NOBODY_GID));
	assert_true(may_sub(&cfg, "open.x", 123456, 654321));
	rcd_config_free(&cfg);
}

static void test_acl_first_match_wins(void **state)
{
	struct rcd_config cfg;

	load(&cfg,
	     "[ringcastd]\n"
	     "publish = uid:1\n"
	     "subscribe = uid:2\n"
	     "[topic \"a.secret\"]\n"
	     "publish = uid:10\n"
	     "[topic \"a.*\"]\n"
	     "publish = *\n"
	     "subscribe = uid:20\n"
	     "[topic \"*\"]\n"
	     "subscribe = uid:30\n");
	/* a.secret matches the first rule: a.*'s '*' does not widen it */
	assert_true(may_pub(&cfg, "a.secret", 10, 0));
	assert_false(may_pub(&cfg, "a.secret", NOBODY_UID, 0));
	/* the first matching rule has no subscribe list: the global one, not a.*'s */
	assert_true(may_sub(&cfg, "a.secret", 2, 0));
	assert_false(may_sub(&cfg, "a.secret", 20, 0));
	assert_false(may_sub(&cfg, "a.secret", 30, 0));
	/* other a.* topics get a.* */
	assert_true(may_pub(&cfg, "a.public", NOBODY_UID, 0));
	assert_true(may_sub(&cfg, "a.public", 20, 0));
	assert_false(may_sub(&cfg, "a.public", 2, 0));
	/* fnmatch without flags: '*' crosses dots */
	assert_true(may_pub(&cfg, "a.b.c", NOBODY_UID, 0));
	/* the catch-all: its own subscribe list, the global publish list */
	assert_true(may_sub(&cfg, "b", 30, 0));
	assert_false(may_sub(&cfg, "b", 2, 0));
	assert_true(may_pub(&cfg, "b", 1, 0));
	assert_false(may_pub(&cfg, "b", 10, 0));
	rcd_config_free(&cfg);
}

static void test_acl_empty_list_and_names(void **state)
{
	struct rcd_config cfg;
	char err[256];

	load(&cfg,
	     "[topic \"closed\"]\n"
	     "publish =\n"
	     "[topic \"rooty\"]\n"
	     "publish = user:root group:root\n");
	assert_false(may_pub(&cfg, "closed", 0, 0));
	assert_false(may_pub(&cfg, "closed", geteuid(), getegid()));
	assert_true(may_sub(&cfg, "closed", 0, 0)); /* default ACL */
	assert_true(may_pub(&cfg, "rooty", 0, NOBODY_GID));
	assert_true(may_pub(&cfg, "rooty", NOBODY_UID, 0));
	assert_false(may_pub(&cfg, "rooty", NOBODY_UID, NOBODY_GID));
	rcd_config_free(&cfg);

	assert_int_equal(rcd_config_defaults(&cfg), 0);
	assert_int_equal(parse(&cfg, "[ringcastd]\npublish = user:no-such-user-rc\n", err,
			       sizeof(err)), -EINVAL);
	assert_string_equal(err, "test.conf:2: publish: no user named 'no-such-user-rc'");
	assert_false(cfg.publish.set); /* a refused list changes nothing */
	rcd_config_free(&cfg);
}

static void test_acl_bad_topics(void **state)
{
	struct rcd_config cfg;
	char big[300];

	load(&cfg, "[topic \"*\"]\npublish = *\nsubscribe = *\n");
	assert_true(rcd_acl_allows(&cfg, "ok", 2, RCD_ACL_PUBLISH, 1, 1, NULL, 0));
	assert_false(rcd_acl_allows(&cfg, "", 0, RCD_ACL_PUBLISH, 1, 1, NULL, 0));
	assert_false(rcd_acl_allows(&cfg, "a\0b", 3, RCD_ACL_PUBLISH, 1, 1, NULL, 0));
	memset(big, 'x', sizeof(big));
	assert_true(rcd_acl_allows(&cfg, big, 255, RCD_ACL_SUBSCRIBE, 1, 1, NULL, 0));
	assert_false(rcd_acl_allows(&cfg, big, 256, RCD_ACL_SUBSCRIBE, 1, 1, NULL, 0));
	/* the topic is a counted string: bytes past len do not matter */
	assert_true(rcd_acl_allows(&cfg, "okay-not-this", 4, RCD_ACL_PUBLISH, 1, 1, NULL, 0));
	rcd_config_free(&cfg);
}

/* ---- per-topic settings ---- */

static void test_topic_settings(void **state)
{
	struct rcd_config cfg;
	uint64_t cap;
	uint32_t tether;

	load(&cfg,
	     "[ringcastd]\n"
	     "capacity = 256k\n"
	     "tether-timeout-ms = 3000\n"
	     "[topic \"video.*\"]\n"
	     "capacity = 64M\n"
	     "[topic \"video.4k\"]\n" /* shadowed by video.* */
	     "capacity = 1G\n"
	     "[topic \"ctl.?\"]\n"
	     "tether-timeout-ms = 50\n");
	rcd_config_topic(&cfg, "video.hd", 8, &cap, &tether);
	assert_int_equal(cap, 64u << 20);
	assert_int_equal(tether, 3000);
	rcd_config_topic(&cfg, "video.4k", 8, &cap, &tether);
	assert_int_equal(cap, 64u << 20);
	rcd_config_topic(&cfg, "ctl.a", 5, &cap, &tether);
	assert_int_equal(cap, 256 * 1024);
	assert_int_equal(tether, 50);
	rcd_config_topic(&cfg, "ctl.ab", 6, &cap, &tether);
	assert_int_equal(cap, 256 * 1024);
	assert_int_equal(tether, 3000);
	/* len, not the NUL, ends the topic */
	rcd_config_topic(&cfg, "ctl.abc", 5, &cap, &tether);
	assert_int_equal(tether, 50);
	rcd_config_free(&cfg);
}

/* ---- bad lines ---- */

static void test_bad_lines(void **state)
{
	static const struct {
		const char *text;
		const char *msg; /* the whole message */
	} cases[] = {
		{ "node = x\n", "test.conf:1: 'node' before any [ringcastd] or [topic] section" },
		{ "[ringcastd]\nfoo = 1\n", "test.conf:2: unknown key 'foo'" },
		{ "[ringcastd]\n\n# c\nnode\n", "test.conf:4: expected 'key = value' or a [section]" },
		{ "[ringcastd]\n= 1\n", "test.conf:2: a line starts with '='" },
		{ "[daemon]\n", "test.conf:1: unknown section (want [ringcastd] or [topic \"PATTERN\"])" },
		{ "[ringcastd\n", "test.conf:1: expected [ringcastd] or [topic \"PATTERN\"]" },
		{ "[ringcastd] x\n", "test.conf:1: text after the section header" },
		{ "[topic]\n", "test.conf:1: unknown section (want [ringcastd] or [topic \"PATTERN\"])" },
		{ "[topic x]\n", "test.conf:1: expected [topic \"PATTERN\"]" },
		{ "[topic \"x]\n", "test.conf:1: topic pattern without a closing '\"'" },
		{ "[topic \"\"]\n", "test.conf:1: a topic pattern has 1 to 255 bytes" },
		{ "[topic \"a\"]\n[topic \"a\"]\n", "test.conf:2: [topic \"a\"] appears twice" },
		{ "[topic \"a\"]\nsocket = /x\n",
		  "test.conf:2: 'socket' belongs in [ringcastd], not in a [topic] section" },
		{ "[ringcastd]\nnode = a\nnode = b\n", "test.conf:3: 'node' given twice in this section" },
		{ "[ringcastd]\nsocket-mode = 0800\n",
		  "test.conf:2: socket-mode: '0800' is not an octal mode in 0..0777" },
		{ "[ringcastd]\nsocket-mode = 1777\n",
		  "test.conf:2: socket-mode: '1777' is not an octal mode in 0..0777" },
		{ "[ringcastd]\nlog-level = 3\n",
		  "test.conf:2: log-level: '3' is not 0 (quiet), 1 (normal) or 2 (debug)" },
		{ "[ringcastd]\ntether-timeout-ms = 0\n",
		  "test.conf:2: tether-timeout-ms: '0' is not a number of milliseconds in 1..86400000" },
		{ "[ringcastd]\nreap-grace-ms = -1\n",
		  "test.conf:2: reap-grace-ms: '-1' is not a number of milliseconds in 0..86400000" },
		{ "[ringcastd]\nmax-topics = 0\n",
		  "test.conf:2: max-topics: '0' is not a number of topics in 1..1000000" },
		{ "[ringcastd]\ncapacity = 1.5M\n",
		  "test.conf:2: capacity: '1.5M' is not a size (digits, then optionally k, M or G)" },
		{ "[ringcastd]\npublish = uid:1 bob\n",
		  "test.conf:2: publish: 'bob' is not uid:N, gid:N, user:NAME, group:NAME or *" },
		{ "[ringcastd]\nsubscribe = uid:4294967295\n",
		  "test.conf:2: subscribe: 'uid:4294967295' is not uid:N, gid:N, user:NAME, group:NAME or *" },
		{ "[ringcastd]\nsubscribe = group:no-such-group-rc\n",
		  "test.conf:2: subscribe: no group named 'no-such-group-rc'" },
		{ "[ringcastd]\nsubscribe = user:\n", "test.conf:2: subscribe: 'user:' names nobody" },
		{ "[ringcastd]\nnode = a b\n",
		  "test.conf:2: node: blank or control character in the node name" },
		{ "[ringcastd]\nnode =\n", "test.conf:2: node: a node name has 1 to 255 bytes" },
		{ "[ringcastd]\nnode = a\x7f\n",
		  "test.conf:2: node: blank or control character in the node name" },
		{ "[ringcastd]\nnode = \xff\xfe\n",
		  "test.conf:2: node: byte 0xff in the node name: it is printable ASCII only" },
		{ "[ringcastd]\nnode = caf\xc3\xa9\n",
		  "test.conf:2: node: byte 0xc3 in the node name: it is printable ASCII only" },
		{ "[ringcastd]\nruntime-dir =\n", "test.conf:2: runtime-dir: empty path" },
		{ "[ringcastd]\ncluster = 10.0.0.1:4545\n",
		  "test.conf:2: cluster: '10.0.0.1' is not a multicast group (224.0.0.0/4 or [ff00::/8])" },
		{ "[ringcastd]\ncluster = 239.1.1.1\n", "test.conf:2: cluster: '239.1.1.1' is not GROUP:PORT" },
		{ "[ringcastd]\ncluster = 239.1.1.1:70000\n",
		  "test.conf:2: cluster: '70000' is not a port in 1..65535" },
		{ "[ringcastd]\niface = a-very-long-interface\n",
		  "test.conf:2: iface: an interface name has 1 to 15 bytes" },
	};
	struct rcd_config cfg;
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(rcd_config_defaults(&cfg), 0);
		err[0] = '\0';
		if (parse(&cfg, cases[i].text, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", cases[i].text);
		if (strcmp(err, cases[i].msg))
			fail_msg("for %s\n got: %s\nwant: %s", cases[i].text, err, cases[i].msg);
		rcd_config_free(&cfg);
	}
}

static void test_bad_bytes(void **state)
{
	static const char with_nul[] = "[ringcastd]\nnode = a\0b\n";
	struct rcd_config cfg;
	char line[RCD_LINE_MAX + 32];
	char err[64];

	assert_int_equal(rcd_config_defaults(&cfg), 0);
	assert_int_equal(rcd_config_parse(&cfg, with_nul, sizeof(with_nul) - 1, "n.conf", err,
					  sizeof(err)), -EINVAL);
	assert_string_equal(err, "n.conf:2: NUL byte in the line");
	memset(line, 'x', sizeof(line));
	memcpy(line, "# ", 2);
	assert_int_equal(rcd_config_parse(&cfg, line, sizeof(line), NULL, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "<config>:1: line longer than 4095 bytes");
	/* a short err buffer is truncated, never overrun; none at all is fine */
	assert_int_equal(rcd_config_parse(&cfg, "bad\n", 4, "n.conf", err, 6), -EINVAL);
	assert_string_equal(err, "n.con");
	assert_int_equal(rcd_config_parse(&cfg, "bad\n", 4, "n.conf", NULL, 0), -EINVAL);
	rcd_config_free(&cfg);
}

static void test_acl_list_limit(void **state)
{
	struct rcd_config cfg;
	char text[1024] = "[ringcastd]\npublish =";
	char err[256];

	for (int i = 0; i < RCD_ACL_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), " uid:%d", i);
	load(&cfg, text);
	assert_int_equal(cfg.publish.n, RCD_ACL_MAX);
	assert_true(may_pub(&cfg, "t", RCD_ACL_MAX - 1, NOBODY_GID));
	rcd_config_free(&cfg);
	strcat(text, " *\n");
	assert_int_equal(rcd_config_defaults(&cfg), 0);
	assert_int_equal(parse(&cfg, text, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "test.conf:2: publish: more than 32 principals in one list");
	rcd_config_free(&cfg);
}

/* ---- the example config in the tree ---- */

static char *read_example(size_t *len)
{
	char path[4096];
	const char *slash = strrchr(__FILE__, '/');
	char *buf;
	int fd, ret;

	/* __FILE__ is tests/unit/test_config.c as the compiler was given it */
	snprintf(path, sizeof(path), "%.*s/../../daemon/ringcastd.conf.example",
		 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	ret = rcd_read_all(fd, &buf, len);
	close(fd);
	return ret ? NULL : buf;
}

/* "#key = value" and "#[section]" (no blank after '#') are settings. */
static void uncomment(char *buf, size_t *len)
{
	size_t out = 0;

	for (size_t i = 0; i < *len; i++) {
		bool line_start = i == 0 || buf[i - 1] == '\n';

		if (line_start && buf[i] == '#' && i + 1 < *len && buf[i + 1] != ' ' &&
		    buf[i + 1] != '\n' && buf[i + 1] != '#')
			continue;
		buf[out++] = buf[i];
	}
	*len = out;
}

static void test_example_config(void **state)
{
	struct rcd_config cfg, def;
	char err[512] = "";
	size_t len;
	char *buf = read_example(&len);

	if (!buf)
		skip(); /* not run from a source tree */
	/* as shipped it changes nothing */
	assert_int_equal(rcd_config_defaults(&def), 0);
	assert_int_equal(rcd_config_defaults(&cfg), 0);
	if (rcd_config_parse(&cfg, buf, len, "example", err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(cfg.capacity, def.capacity);
	assert_int_equal(cfg.n_rules, 0);
	assert_false(cfg.publish.set);
	rcd_config_free(&cfg);
	/* and every commented-out setting is valid */
	uncomment(buf, &len);
	assert_int_equal(rcd_config_defaults(&cfg), 0);
	if (rcd_config_parse(&cfg, buf, len, "example", err, sizeof(err)))
		fail_msg("uncommented: %s", err);
	assert_string_equal(cfg.socket_path, def.socket_path);
	assert_string_equal(cfg.runtime_dir, def.runtime_dir);
	assert_int_equal(cfg.socket_mode, def.socket_mode);
	assert_int_equal(cfg.capacity, def.capacity);
	assert_int_equal(cfg.tether_timeout_ms, def.tether_timeout_ms);
	assert_int_equal(cfg.reap_grace_ms, def.reap_grace_ms);
	assert_int_equal(cfg.log_level, def.log_level);
	assert_true(cfg.publish.set);
	assert_non_null(cfg.cluster);
	assert_non_null(cfg.iface);
	assert_non_null(cfg.secret_file);
	assert_int_equal(cfg.n_rules, 2);
	rcd_config_free(&cfg);
	rcd_config_free(&def);
	free(buf);
}

/* ---- flags ---- */

static void write_tmp(char *path, const char *text)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static void test_flags_override_file(void **state)
{
	char path[] = "/tmp/rcd-test-XXXXXX";
	/* mkstemp() fills path in place, so argv may point at it already */
	char *argv[] = { "ringcastd", "--node", "from-flag", "--config", path, "--capacity=256k",
			 "-v", NULL };
	char *argv2[] = { "ringcastd", "--config", path, "--publish", "*", "-q", NULL };
	struct rcd_config cfg;

	write_tmp(path,
		  "[ringcastd]\n"
		  "node = from-file\n"
		  "capacity = 128k\n"
		  "tether-timeout-ms = 777\n"
		  "log-level = 0\n"
		  "publish = uid:5\n"
		  "[topic \"t.*\"]\n"
		  "capacity = 8M\n");
	assert_int_equal(rcd_config_defaults(&cfg), 0);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(argv), argv), 0);
	assert_string_equal(cfg.config_file, path);
	assert_string_equal(cfg.node, "from-flag");      /* flag before --config still wins */
	assert_int_equal(cfg.capacity, 256 * 1024);      /* flag wins */
	assert_int_equal(cfg.tether_timeout_ms, 777);    /* file only */
	assert_int_equal(cfg.log_level, 1);              /* file 0, then -v */
	assert_true(cfg.publish.set);                    /* file only */
	assert_int_equal(cfg.n_rules, 1);
	rcd_config_free(&cfg);

	/* a zeroed config gets the defaults first */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(argv2), argv2), 0);
	assert_string_equal(cfg.node, "from-file");
	assert_string_equal(cfg.socket_path, RINGCAST_DEFAULT_SOCKET);
	assert_int_equal(cfg.log_level, 0);
	assert_int_equal(cfg.publish.n, 1);
	assert_int_equal(cfg.publish.p[0].kind, RCD_P_ANY);
	rcd_config_free(&cfg);
	unlink(path);
}

static void test_flags_every_setting(void **state)
{
	char path[] = "/tmp/rcd-test-XXXXXX";
	struct rcd_config cfg;
	char *argv[] = {
		"ringcastd", "--config", path,
		"--socket", "/tmp/x/rc.sock", "--runtime-dir", "/tmp/x", "--node", "n1",
		"--cluster", "[ff02::1234]:5000", "--iface", "lo", "--secret-file", "/tmp/s",
		"--capacity", "2M", "--tether-timeout", "1500", "--reap-grace", "250",
		"--socket-mode", "600", "--log-level", "0", "--verbose", "--verbose", "--verbose",
		"--publish", "uid:3,gid:4", "--subscribe", "group:root", NULL,
	};

	write_tmp(path, "# nothing\n");
	assert_int_equal(rcd_config_defaults(&cfg), 0);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(argv), argv), 0);
	assert_string_equal(cfg.socket_path, "/tmp/x/rc.sock");
	assert_string_equal(cfg.runtime_dir, "/tmp/x");
	assert_string_equal(cfg.node, "n1");
	assert_string_equal(cfg.cluster, "[ff02::1234]:5000");
	assert_string_equal(cfg.iface, "lo");
	assert_string_equal(cfg.secret_file, "/tmp/s");
	assert_int_equal(cfg.capacity, 2u << 20);
	assert_int_equal(cfg.tether_timeout_ms, 1500);
	assert_int_equal(cfg.reap_grace_ms, 250);
	assert_int_equal(cfg.socket_mode, 0600);
	assert_int_equal(cfg.log_level, 2); /* 0, then three -v, capped */
	assert_int_equal(cfg.publish.n, 2);
	assert_int_equal(cfg.publish.p[1].kind, RCD_P_GID);
	assert_int_equal(cfg.publish.p[1].id, 4);
	assert_int_equal(cfg.subscribe.p[0].kind, RCD_P_GID);
	assert_int_equal(cfg.subscribe.p[0].id, 0);
	rcd_config_free(&cfg);
	unlink(path);
}

static void test_flags_errors(void **state)
{
	char path[] = "/tmp/rcd-test-XXXXXX";
	struct rcd_config cfg;
	char *missing[] = { "ringcastd", "--config", "/nonexistent/rcd.conf", NULL };
	char *badfile[] = { "ringcastd", "--config", path, NULL };
	char *badval[] = { "ringcastd", "--config", "/dev/null", "--capacity", "3M", NULL };
	char *unknown[] = { "ringcastd", "--config", "/dev/null", "--frobnicate", NULL };
	char *noarg[] = { "ringcastd", "--config", "/dev/null", "--node", NULL };
	char *binary_node[] = { "ringcastd", "--config", "/dev/null", "--node", "\xff\xfe", NULL };
	char *stray[] = { "ringcastd", "--config", "/dev/null", "extra", NULL };
	char *help[] = { "ringcastd", "--capacity", "bad", "--help", NULL };
	char *version[] = { "ringcastd", "--version", NULL };

	write_tmp(path, "[ringcastd]\nbogus = 1\n");
	assert_int_equal(rcd_config_defaults(&cfg), 0);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(missing), missing), -ENOENT);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(badfile), badfile), -EINVAL);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(badval), badval), -EINVAL);
	assert_int_equal(cfg.capacity, RC_CAPACITY_DEFAULT);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(unknown), unknown), -EINVAL);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(noarg), noarg), -EINVAL);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(binary_node), binary_node), -EINVAL);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(stray), stray), -EINVAL);
	/* --help wins before any value is looked at */
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(help), help), 1);
	assert_int_equal(rcd_config_from_args(&cfg, ARGC(version), version), 1);
	rcd_config_free(&cfg);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_default_acl),
		cmocka_unit_test(test_parse_every_key),
		cmocka_unit_test(test_parse_empty_and_no_trailing_newline),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_capacity_limits),
		cmocka_unit_test(test_acl_uid_gid_any),
		cmocka_unit_test(test_acl_first_match_wins),
		cmocka_unit_test(test_acl_empty_list_and_names),
		cmocka_unit_test(test_acl_bad_topics),
		cmocka_unit_test(test_acl_list_limit),
		cmocka_unit_test(test_topic_settings),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_example_config),
		cmocka_unit_test(test_flags_override_file),
		cmocka_unit_test(test_flags_every_setting),
		cmocka_unit_test(test_flags_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
