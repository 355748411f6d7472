/*
 * server/keys.h - agencies' API keys.
 *
 * A key reads "kd_<key id>_<secret>".  The database keeps the key id, the
 * poster it belongs to, the event types it may post and the SHA-256 of the
 * secret; the secret itself is shown once, when the key is created.  The
 * server holds the valid keys in memory and refreshes them from the
 * database (keys_replace).
 */
#ifndef KENDALI_KEYS_H
#define KENDALI_KEYS_H

#include "auth.h"
#include "idset.h"

#include <libpq-fe.h>
#include <stdbool.h>

#define KEY_PREFIX "kd_" /* every agency key begins so */
#define KEY_ID_LEN 12

struct key_info {
	char key_id[KEY_ID_LEN + 1];
	char poster[65];
	char tenant[AUTH_TENANT_MAX + 1]; /* whose events it posts */
	unsigned types;	      /* bit (1 << enum ev_type) per allowed type */
	bool scoped;	      /* limited to the sensors below */
	struct idset sensors; /* the sensors allowed, when scoped */
	unsigned char sha256[32];
};

struct keys;

struct keys *keys_new(void);
void keys_free(struct keys *ks);

/*
 * Replaces the keys held with the rows of
 * READS_KEYS_SQL (reads.h).
 * Returns 0, or -1 if the result is unusable (the old keys stay).
 */
int keys_replace(struct keys *ks, PGresult *r)
    __attribute__((warn_unused_result));
/* The key of a bearer token ("kd_..."), or NULL (borrowed). */
const struct key_info *keys_check(const struct keys *ks, const char *key);
/* Whether a credential is meant as an agency key ("kd_..."), good or not;
 * screen tokens and sessions look otherwise. */
bool keys_is_key(const char *credential);
int keys_count(const struct keys *ks);

/*
 * Whether the key may post readings of, and register, this sensor: an
 * unscoped key any, a scoped key exactly the ids it lists.
 */
bool keys_sensor_allowed(const struct key_info *k, const char *sensor_id);

/* The event types of a comma-separated list of names, as a bit mask
 * (1 << enum ev_type); names that are no type are left out. */
unsigned keys_parse_types(const char *list);

#endif
