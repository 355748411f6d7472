#include "keys.h"

#include "auth.h"
#include "event.h"
#include "hmap.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_LEN (sizeof(KEY_PREFIX) - 1)

struct keys {
	struct hmap by_id;
};

struct keys *keys_new(void)
{
	return calloc(1, sizeof(struct keys));
}

static void key_info_free(void *v)
{
	idset_free(&((struct key_info *)v)->sensors);
	free(v);
}

static void clear(struct hmap *m)
{
	hmap_free_all(m, key_info_free);
}

void keys_free(struct keys *ks)
{
	if (!ks)
		return;
	clear(&ks->by_id);
	free(ks);
}

unsigned keys_parse_types(const char *list)
{
	unsigned types = 0;
	char tmp[64];

	snprintf(tmp, sizeof(tmp), "%s", list);
	for (char *save, *t = strtok_r(tmp, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		for (int i = 0; i < EV_TYPE_COUNT; i++)
			if (strcmp(t, ev_type_name(i)) == 0)
				types |= 1u << i;
	}
	return types;
}

int keys_replace(struct keys *ks, PGresult *r)
{
	struct hmap next = {0};

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct key_info *k = calloc(1, sizeof(*k));

		if (!k)
			goto fail;
		snprintf(k->key_id, sizeof(k->key_id), "%s",
			 PQgetvalue(r, i, 0));
		snprintf(k->poster, sizeof(k->poster), "%s",
			 PQgetvalue(r, i, 1));
		snprintf(k->tenant, sizeof(k->tenant), "%s",
			 PQgetvalue(r, i, 5));
		k->types = keys_parse_types(PQgetvalue(r, i, 2));
		k->scoped = !PQgetisnull(r, i, 4);
		if (k->scoped &&
		    idset_parse(&k->sensors, PQgetvalue(r, i, 4)) < 0) {
			free(k);
			goto fail;
		}
		if (auth_hex_decode(PQgetvalue(r, i, 3), k->sha256, 32) < 0 ||
		    hmap_put(&next, k->key_id, k) < 0) {
			idset_free(&k->sensors);
			free(k);
			goto fail;
		}
	}
	clear(&ks->by_id);
	ks->by_id = next;
	return 0;
fail:
	clear(&next);
	return -1;
}

bool keys_is_key(const char *credential)
{
	return strncmp(credential, KEY_PREFIX, PREFIX_LEN) == 0;
}

const struct key_info *keys_check(const struct keys *ks, const char *key)
{
	char id[KEY_ID_LEN + 1];
	unsigned char digest[32];
	const char *secret;
	const struct key_info *k;

	if (!key || !keys_is_key(key) ||
	    strlen(key) < PREFIX_LEN + KEY_ID_LEN + 2 ||
	    key[PREFIX_LEN + KEY_ID_LEN] != '_')
		return NULL;
	memcpy(id, key + PREFIX_LEN, KEY_ID_LEN);
	id[KEY_ID_LEN] = '\0';
	secret = key + PREFIX_LEN + KEY_ID_LEN + 1;
	k = hmap_get(&ks->by_id, id);
	if (!k)
		return NULL;
	auth_sha256(secret, digest);
	return CRYPTO_memcmp(digest, k->sha256, 32) == 0 ? k : NULL;
}

bool keys_sensor_allowed(const struct key_info *k, const char *sensor_id)
{
	return !k->scoped || idset_has(&k->sensors, sensor_id);
}

int keys_count(const struct keys *ks)
{
	return (int)ks->by_id.len;
}
