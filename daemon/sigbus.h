/* SPDX-License-Identifier: MIT */
/*
 * Every client holding a read-write fd of a shared file (ctl files,
 * publishers' rings, the bells file) can truncate it or punch pages out
 * of it, and the daemon's next access to such a page is a SIGBUS.  While
 * a registry is open, a handler restores the file (fallocate), or, with
 * no room for that, maps a private page in place of the lost one and
 * flags it; the tick then reports the flags and retires what lost a page
 * (rcd_registry_check_truncated, registry.h).  A SIGBUS anywhere else is
 * still fatal.
 */
#ifndef RINGCASTD_SIGBUS_H
#define RINGCASTD_SIGBUS_H

struct rcd_registry;

/* Install the handler for reg (the one registry it searches).  0 or -errno. */
int rcd_sigbus_install(struct rcd_registry *reg);
/* Back to the default action, if reg's handler is installed. */
void rcd_sigbus_uninstall(struct rcd_registry *reg);

#endif /* RINGCASTD_SIGBUS_H */
