#include "auth.h"

#include "hmap.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* scrypt cost: 2^15 x 8 x 128 bytes = 32 MiB and ~100 ms a hash. */
#define SCRYPT_LOG2_N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_MAXMEM (64u << 20)
#define SALT_LEN 16
#define HASH_LEN 32

static const char *const role_names[ROLE_COUNT] = {"wall", "operator", "mayor",
						   "admin", "province"};
static const char *const can_names[CAN_COUNT] = {"read",  "ack",   "wall",
						 "mayor", "admin", "province"};

const char *auth_role_name(enum auth_role r)
{
	return r < ROLE_COUNT ? role_names[r] : "?";
}

int auth_role_parse(const char *s)
{
	for (int i = 0; i < ROLE_COUNT; i++)
		if (strcmp(s, role_names[i]) == 0)
			return i;
	return -1;
}

unsigned auth_role_can(enum auth_role r)
{
	switch (r) {
	case ROLE_WALL:
		return CAN_READ | CAN_WALL;
	case ROLE_OPERATOR:
		return CAN_READ | CAN_WALL | CAN_ACK;
	case ROLE_MAYOR:
		return CAN_READ | CAN_MAYOR;
	case ROLE_ADMIN:
		return CAN_READ | CAN_WALL | CAN_MAYOR | CAN_ACK | CAN_ADMIN;
	case ROLE_PROVINCE:
		return CAN_READ | CAN_PROVINCE;
	default:
		return 0;
	}
}

const char *auth_can_name(int bit)
{
	return bit >= 0 && bit < CAN_COUNT ? can_names[bit] : "?";
}

const char *auth_identity_role(const struct identity *who)
{
	return who->kind == AUTH_ANONYMOUS ? "anonymous"
					   : auth_role_name(who->role);
}

const struct identity *auth_anonymous(void)
{
	/* Enough to run the demonstration on one machine: both pages, and
	 * acknowledgements that name their author in the body. */
	static const struct identity anon = {
	    .kind = AUTH_ANONYMOUS,
	    .name = "anonymous",
	    .can = CAN_READ | CAN_WALL | CAN_MAYOR | CAN_ACK,
	};
	return &anon;
}

/* ---- the credentials held ---- */

struct auth {
	struct hmap by_id;
};

struct auth *auth_new(void)
{
	return calloc(1, sizeof(struct auth));
}

static void clear(struct hmap *m)
{
	hmap_free_all(m, NULL);
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	clear(&a->by_id);
	free(a);
}

int auth_hex_decode(const char *hex, unsigned char *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

void auth_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int auth_replace(struct auth *a, PGresult *r)
{
	struct hmap next = {0};

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 7)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct identity *w = calloc(1, sizeof(*w));
		int role = auth_role_parse(PQgetvalue(r, i, 3));

		if (!w)
			goto fail;
		w->kind =
		    PQgetvalue(r, i, 0)[0] == 's' ? AUTH_SCREEN : AUTH_USER;
		snprintf(w->id, sizeof(w->id), "%s", PQgetvalue(r, i, 1));
		snprintf(w->name, sizeof(w->name), "%s", PQgetvalue(r, i, 2));
		snprintf(w->tenant, sizeof(w->tenant), "%s",
			 PQgetvalue(r, i, 6));
		w->role = role < 0 ? ROLE_WALL : (enum auth_role)role;
		w->can = role < 0 ? 0 : auth_role_can(w->role);
		w->expires_us = strtoll(PQgetvalue(r, i, 5), NULL, 10);
		if (auth_hex_decode(PQgetvalue(r, i, 4), w->sha256, 32) < 0 ||
		    hmap_put(&next, w->id, w) < 0) {
			free(w);
			goto fail;
		}
	}
	clear(&a->by_id);
	a->by_id = next;
	return 0;
fail:
	clear(&next);
	return -1;
}

int auth_add(struct auth *a, const struct identity *who)
{
	struct identity *w = malloc(sizeof(*w));
	void *old = hmap_get(&a->by_id, who->id);

	if (!w)
		return -1;
	*w = *who;
	if (hmap_put(&a->by_id, w->id, w) < 0) {
		free(w);
		return -1;
	}
	free(old);
	return 0;
}

void auth_remove(struct auth *a, const char *id)
{
	free(hmap_del(&a->by_id, id));
}

void auth_sha256(const char *s, unsigned char out[32])
{
	unsigned len = 32;

	EVP_Digest(s, strlen(s), out, &len, EVP_sha256(), NULL);
}

const struct identity *auth_check(const struct auth *a, const char *credential,
				  int64_t now_us)
{
	char id[AUTH_ID_LEN + 1];
	unsigned char digest[32];
	const struct identity *w;
	enum auth_kind kind;

	if (!credential || strlen(credential) != AUTH_CREDENTIAL_LEN ||
	    credential[2] != '_' || credential[3 + AUTH_ID_LEN] != '_')
		return NULL;
	if (strncmp(credential, "st", 2) == 0)
		kind = AUTH_SCREEN;
	else if (strncmp(credential, "ss", 2) == 0)
		kind = AUTH_USER;
	else
		return NULL;
	memcpy(id, credential + 3, AUTH_ID_LEN);
	id[AUTH_ID_LEN] = '\0';
	w = hmap_get(&a->by_id, id);
	if (!w || w->kind != kind || (w->expires_us && w->expires_us <= now_us))
		return NULL;
	auth_sha256(credential + 3 + AUTH_ID_LEN + 1, digest);
	return CRYPTO_memcmp(digest, w->sha256, 32) == 0 ? w : NULL;
}

bool auth_live(const struct auth *a, const char *id, int64_t now_us)
{
	const struct identity *w = hmap_get(&a->by_id, id);

	return w && (!w->expires_us || w->expires_us > now_us);
}

int auth_count(const struct auth *a)
{
	return (int)a->by_id.len;
}

int auth_mint(const char *prefix, char *credential, char *id,
	      unsigned char sha256_out[32])
{
	unsigned char idb[AUTH_ID_LEN / 2], secretb[AUTH_SECRET_LEN / 2];
	char secret[AUTH_SECRET_LEN + 1];

	if (RAND_bytes(idb, sizeof(idb)) != 1 ||
	    RAND_bytes(secretb, sizeof(secretb)) != 1)
		return -1;
	auth_hex(idb, sizeof(idb), id);
	auth_hex(secretb, sizeof(secretb), secret);
	auth_sha256(secret, sha256_out);
	snprintf(credential, AUTH_CREDENTIAL_LEN + 1, "%.2s_%s_%s", prefix, id,
		 secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	return 0;
}

/* ---- passwords ---- */

static int scrypt(const char *password, const unsigned char *salt,
		  size_t salt_len, int log2_n, int r, int p, unsigned char *out,
		  size_t out_len)
{
	return EVP_PBE_scrypt(password, strlen(password), salt, salt_len,
			      (uint64_t)1 << log2_n, (uint64_t)r, (uint64_t)p,
			      SCRYPT_MAXMEM, out, out_len) == 1
		   ? 0
		   : -1;
}

int auth_password_hash(const char *password, char *stored, size_t len)
{
	unsigned char salt[SALT_LEN], hash[HASH_LEN];
	char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1];

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    scrypt(password, salt, sizeof(salt), SCRYPT_LOG2_N, SCRYPT_R,
		   SCRYPT_P, hash, sizeof(hash)) < 0)
		return -1;
	auth_hex(salt, sizeof(salt), salt_hex);
	auth_hex(hash, sizeof(hash), hash_hex);
	if ((size_t)snprintf(stored, len, "scrypt$%d$%d$%d$%s$%s",
			     SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, salt_hex,
			     hash_hex) >= len)
		return -1;
	return 0;
}

const char *auth_password_dummy(void)
{
	/* Well-formed, same cost as a real one, and no hash of anything. */
	return "scrypt$15$8$1$00000000000000000000000000000000$"
	       "0000000000000000000000000000000000000000000000000000000000000"
	       "000";
}

bool auth_password_verify(const char *password, const char *stored)
{
	unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
	char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1];
	int log2_n, r, p, n = 0;
	bool ok;

	if (sscanf(stored, "scrypt$%d$%d$%d$%32[0-9a-f]$%64[0-9a-f]%n", &log2_n,
		   &r, &p, salt_hex, hash_hex, &n) != 5 ||
	    stored[n] || log2_n < 10 || log2_n > 20 || r < 1 || r > 32 ||
	    p < 1 || p > 4 || auth_hex_decode(salt_hex, salt, SALT_LEN) < 0 ||
	    auth_hex_decode(hash_hex, want, HASH_LEN) < 0) {
		/* Spend the same time as for a good one. */
		log2_n = SCRYPT_LOG2_N, r = SCRYPT_R, p = SCRYPT_P;
		memset(salt, 0, sizeof(salt));
		memset(want, 0xff, sizeof(want));
	}
	ok = scrypt(password, salt, SALT_LEN, log2_n, r, p, got, sizeof(got)) ==
		 0 &&
	     CRYPTO_memcmp(got, want, HASH_LEN) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}
