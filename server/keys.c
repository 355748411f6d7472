#include "keys.h"

#include "auth.h"
#include "event.h"
#include "hmap.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
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

static unsigned parse_types(const char *list)
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
		k->types = parse_types(PQgetvalue(r, i, 2));
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

/* ---- the command line ---- */

static int usage(void)
{
	fprintf(stderr, "usage: kendali key create --poster NAME --types "
			"call,report,sensor\n"
			"                          [--sensors ID,ID,...]\n"
			"       kendali key list\n"
			"       kendali key revoke KEY_ID\n");
	return 2;
}

static int key_create(PGconn *conn, const char *tenant, int argc, char **argv)
{
	const char *poster = NULL, *types = NULL, *sensors = NULL;
	unsigned char idb[KEY_ID_LEN / 2], secretb[24], digest[32];
	char id[KEY_ID_LEN + 1], secret[49], digest_hex[70], pg_types[64];
	unsigned mask;
	PGresult *r;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--poster") == 0 && i + 1 < argc)
			poster = argv[++i];
		else if (strcmp(argv[i], "--types") == 0 && i + 1 < argc)
			types = argv[++i];
		else if (strcmp(argv[i], "--sensors") == 0 && i + 1 < argc)
			sensors = argv[++i];
		else
			return usage();
	}
	if (!poster || !types)
		return usage();
	if (strlen(poster) < 1 || strlen(poster) > 64) {
		fprintf(stderr,
			"kendali: --poster must be 1 to 64 characters\n");
		return 2;
	}
	mask = parse_types(types);
	/* Every name given must be a type; an empty mask is useless. */
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s", types);
	int named = 0;
	for (char *save, *t = strtok_r(tmp, ",", &save); t;
	     t = strtok_r(NULL, ",", &save))
		named++;
	if (!mask || __builtin_popcount(mask) != named) {
		fprintf(stderr, "kendali: --types takes a comma-separated list "
				"of call, report, sensor\n");
		return 2;
	}
	if (sensors && (!sensors[0] || strlen(sensors) > 4000 ||
			strspn(sensors, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"abcdefghijklmnopqrstuvwxyz0123456789"
					"._:-,") != strlen(sensors) ||
			sensors[0] == ',' || strstr(sensors, ",,") ||
			sensors[strlen(sensors) - 1] == ',')) {
		fprintf(stderr, "kendali: --sensors takes a comma-separated "
				"list of sensor ids\n");
		return 2;
	}
	if (RAND_bytes(idb, sizeof(idb)) != 1 ||
	    RAND_bytes(secretb, sizeof(secretb)) != 1) {
		fprintf(stderr, "kendali: no random bytes\n");
		return 1;
	}
	auth_hex(idb, sizeof(idb), id);
	auth_hex(secretb, sizeof(secretb), secret);
	auth_sha256(secret, digest);
	strcpy(digest_hex, "\\x");
	auth_hex(digest, 32, digest_hex + 2);
	snprintf(pg_types, sizeof(pg_types), "{%s}", types);
	char *pg_sensors = NULL;
	if (sensors) {
		pg_sensors = malloc(strlen(sensors) + 3);
		if (!pg_sensors)
			return 1;
		sprintf(pg_sensors, "{%s}", sensors);
	}
	const char *p[6] = {id,	      tenant,	  poster,
			    pg_types, digest_hex, pg_sensors};
	r = PQexecParams(conn,
			 "INSERT INTO api_keys (key_id, tenant, poster, types,"
			 " secret_sha256, sensors)"
			 " VALUES ($1, $2, $3, $4, $5, $6)",
			 6, NULL, p, NULL, NULL, 0);
	free(pg_sensors);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "kendali: %s", PQresultErrorMessage(r));
		PQclear(r);
		return 1;
	}
	PQclear(r);
	printf("Created key %s for poster \"%s\" (types %s, sensors %s, "
	       "tenant %s).\n"
	       "It is shown only now; store it in the agency's "
	       "system:\n" KEY_PREFIX "%s_%s\n",
	       id, poster, types, sensors ? sensors : "all", tenant, id,
	       secret);
	return 0;
}

static int key_list(PGconn *conn, const char *tenant)
{
	static const char *const heads[] = {"KEY_ID", "POSTER", "TYPES",
					    "CREATED", "REVOKED"};
	static const int widths[] = {14, 24, 20, 21};

	return auth_cli_list(
	    conn,
	    "SELECT key_id, poster, array_to_string(types, ','),"
	    " " AUTH_UTC_TEXT(
		"created_at") ","
			      " " AUTH_UTC_TEXT(
				  "revoked_at") " FROM api_keys WHERE tenant = "
						"$1"
						" ORDER BY created_at, key_id",
	    tenant, 5, heads, widths);
}

static int key_revoke(PGconn *conn, const char *tenant, const char *id)
{
	const char *p[2] = {id, tenant};

	return auth_cli_update(conn,
			       "UPDATE api_keys SET revoked_at = now()"
			       " WHERE key_id = $1 AND tenant = $2"
			       " AND revoked_at IS NULL",
			       2, p, "no active key", "Revoked key");
}

int keys_cli(PGconn *conn, const char *tenant, int argc, char **argv)
{
	if (argc < 1)
		return usage();
	if (strcmp(argv[0], "create") == 0)
		return key_create(conn, tenant, argc - 1, argv + 1);
	if (strcmp(argv[0], "list") == 0 && argc == 1)
		return key_list(conn, tenant);
	if (strcmp(argv[0], "revoke") == 0 && argc == 2)
		return key_revoke(conn, tenant, argv[1]);
	return usage();
}
