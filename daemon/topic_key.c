/* SPDX-License-Identifier: MIT */
/*
 * The node's topic key (see topic_key.h): load or create it, and the
 * keyed hash of topic names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "topic_key.h"

_Static_assert(RCD_TOPIC_KEY_BYTES == crypto_shorthash_KEYBYTES, "SipHash-2-4 takes 128 bits");
_Static_assert(crypto_shorthash_BYTES == sizeof(uint64_t), "an id is 64 bits");

uint64_t rcd_topic_hash(const struct rcd_topic_key *key, const char *name, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, (const unsigned char *)name, len, key->k);
	/* Native byte order, like every integer of the runtime directory's files. */
	memcpy(&h, out, sizeof(h));
	return h;
}

/*
 * A new key in a file that appears whole or not at all: built as an
 * O_TMPFILE (mode 0600: nobody else ever holds an fd of it) and linked
 * into place once written.  The directory is locked, so no other daemon
 * links one meanwhile.
 */
static int create_key(int dirfd, struct rcd_topic_key *key)
{
	char proc[64];
	ssize_t n;
	int fd, ret = 0;

	fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	crypto_shorthash_keygen(key->k);
	n = pwrite(fd, key->k, sizeof(key->k), 0);
	if (n != (ssize_t)sizeof(key->k)) {
		ret = n < 0 ? -errno : -EIO;
		goto out;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dirfd, RCD_TOPIC_KEY_FILE, AT_SYMLINK_FOLLOW) < 0)
		ret = -errno;
out:
	close(fd);
	if (ret < 0)
		sodium_memzero(key->k, sizeof(key->k));
	return ret;
}

/* Is the open key file fd exactly ours and private?  0, or -EPERM and why. */
static int check_key_file(int fd, const char **why)
{
	struct stat st;

	*why = NULL;
	if (fstat(fd, &st) < 0) {
		*why = strerror(errno);
		return -errno;
	}
	if (!S_ISREG(st.st_mode))
		*why = "it is not a regular file";
	else if (st.st_uid != geteuid())
		*why = "it is owned by another user";
	else if (st.st_mode & 077)
		*why = "its group or others have access to it";
	else if (st.st_nlink != 1)
		*why = "it has more than one link (another name reaches it)";
	else if (st.st_size != RCD_TOPIC_KEY_BYTES)
		*why = "it is not 16 bytes long";
	return *why ? -EPERM : 0;
}

int rcd_topic_key_load(int dirfd, const char *dir, struct rcd_log *log, struct rcd_topic_key *key)
{
	const char *why = NULL;
	ssize_t n;
	int fd, ret;

	memset(key, 0, sizeof(*key));
	if (sodium_init() < 0) {
		rcd_err(log, "libsodium cannot start: no topic key");
		return -EIO;
	}
	/*
	 * O_NOFOLLOW: a symlink is refused (ELOOP), never followed to
	 * whatever it names.  O_NONBLOCK: a FIFO put there must not hang the
	 * start; fstat then refuses it.
	 */
	fd = openat(dirfd, RCD_TOPIC_KEY_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
		    O_NOCTTY);
	if (fd < 0 && errno == ENOENT) {
		ret = create_key(dirfd, key);
		if (ret < 0) {
			rcd_err(log, "cannot create %s/%s: %s", dir, RCD_TOPIC_KEY_FILE, strerror(-ret));
			return ret;
		}
		key->created = true;
		rcd_info(log, "created the topic key %s/%s", dir, RCD_TOPIC_KEY_FILE);
		return 0;
	}
	if (fd < 0) {
		ret = errno == ELOOP ? -EPERM : -errno;
		why = errno == ELOOP ? "it is a symbolic link" : strerror(errno);
		goto refuse;
	}
	ret = check_key_file(fd, &why);
	if (ret == 0) {
		n = pread(fd, key->k, sizeof(key->k), 0);
		if (n != (ssize_t)sizeof(key->k)) {
			ret = n < 0 ? -errno : -EPERM;
			why = n < 0 ? strerror(errno) : "it is shorter than it says";
		}
	}
	close(fd);
	if (ret == 0)
		return 0;
	sodium_memzero(key->k, sizeof(key->k));
refuse:
	/*
	 * Not replaced: the key may be known to whoever made the file so, and
	 * a new key would leave every ring here unadopted.  The admin decides.
	 */
	rcd_err(log, "refusing the topic key %s/%s: %s; it must be the daemon's alone (owner "
		"uid %u, mode 0600, one link). If it may have been read, remove it: the next "
		"start makes a new key, and does not adopt the rings made under the old one",
		dir, RCD_TOPIC_KEY_FILE, why, (unsigned)geteuid());
	return ret;
}
