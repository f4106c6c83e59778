/* SPDX-License-Identifier: MIT */
/*
 * The node's topic key: the secret that topic ids are a keyed hash of.
 *
 * A topic's files are named after its id, and a restarted daemon adopts
 * a ring only if the topic its header names hashes to the file's id.
 * Publishers can rewrite that header.  With a public hash (64-bit FNV-1a
 * until issue 17) a publisher could search offline for a name of its own
 * whose id lands near a victim topic's, and at the next restart have its
 * ring adopted as the victim.  Keyed with SipHash-2-4 (libsodium's
 * crypto_shorthash), an id tells nothing about other names and no name
 * can be tested without the daemon: a 64-bit target is out of reach.
 *
 * The key lives in the runtime directory (RCD_TOPIC_KEY_FILE), beside the
 * rings it names and as long-lived as they are: created 0600 at the first
 * start, adopted at every restart.  A key file that is not exactly ours
 * and private stops the daemon (see rcd_topic_key_load()).
 */
#ifndef RINGCASTD_TOPIC_KEY_H
#define RINGCASTD_TOPIC_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rcd_log;

#define RCD_TOPIC_KEY_FILE "topic.key"
#define RCD_TOPIC_KEY_BYTES 16 /* crypto_shorthash_KEYBYTES: SipHash-2-4's 128 bits */

struct rcd_topic_key {
	uint8_t k[RCD_TOPIC_KEY_BYTES];
	bool created; /* made at this start: rings already there were not made with it */
};

/*
 * Read the key from dirfd/RCD_TOPIC_KEY_FILE, or create that file (mode
 * 0600, a fresh random key) if there is none.  An existing file must be a
 * regular file (not a symlink: O_NOFOLLOW), owned by our effective uid,
 * with no group or other permission bits, one link, and exactly
 * RCD_TOPIC_KEY_BYTES long; anything else is refused with -EPERM and
 * why logged, rather than replaced: someone
 * with the daemon's rights or an admin made it so, the key may be known,
 * and a new key would silently orphan every ring of the node.  dir is for
 * the messages.  0 or negative errno (logged).
 */
int rcd_topic_key_load(int dirfd, const char *dir, struct rcd_log *log, struct rcd_topic_key *key);

/* SipHash-2-4 of name[0..len) under key: a topic's id before probing. */
uint64_t rcd_topic_hash(const struct rcd_topic_key *key, const char *name, size_t len);

#endif /* RINGCASTD_TOPIC_KEY_H */
