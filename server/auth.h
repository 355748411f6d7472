/*
 * server/auth.h - who may watch and act: screen tokens, users, sessions
 * (docs/security.md, "Screens and people").
 *
 * A credential reads "st_<id>_<secret>" (a screen token) or
 * "ss_<id>_<secret>" (a login session).  The database keeps the id, the
 * name and role behind it and the SHA-256 of the secret.  The server holds
 * the live credentials in memory, re-read whenever the tables change
 * (NOTIFY kendali_auth), so a check is a hash lookup and never waits.
 *
 * Passwords are stored as scrypt hashes; hashing one takes ~100 ms of CPU
 * and 32 MiB, so the server runs it on libuv's thread pool, never on the
 * loop.
 */
#ifndef KENDALI_AUTH_H
#define KENDALI_AUTH_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_ID_LEN 12
#define AUTH_SECRET_LEN 48 /* hex digits */
#define AUTH_CREDENTIAL_LEN (3 + AUTH_ID_LEN + 1 + AUTH_SECRET_LEN)
#define AUTH_NAME_MAX 64
#define AUTH_TENANT_MAX 32 /* a tenant id (schema/011) */

/* ROLE_PROVINCE is a province's, and only a province's (schema/013). */
enum auth_role {
	ROLE_WALL,
	ROLE_OPERATOR,
	ROLE_MAYOR,
	ROLE_ADMIN,
	ROLE_PROVINCE,
	ROLE_COUNT
};

enum auth_kind { AUTH_SCREEN, AUTH_USER, AUTH_ANONYMOUS };

/* What an identity may do. */
enum {
	CAN_READ = 1u << 0,  /* read APIs and the websocket */
	CAN_ACK = 1u << 1,   /* acknowledge alerts */
	CAN_WALL = 1u << 2,  /* the wall page */
	CAN_MAYOR = 1u << 3, /* the mayor's page */
	CAN_ADMIN = 1u << 4, /* /metrics from anywhere */
	/* The roll-up of a province's members (/provinsi), and each member's
	 * summary read-only (docs/api.md 2.5). */
	CAN_PROVINCE = 1u << 5,
	CAN_COUNT = 6
};

struct identity {
	enum auth_kind kind;
	char id[AUTH_ID_LEN + 1]; /* token or session id; "" when anonymous */
	char name[AUTH_NAME_MAX + 1];
	char tenant[AUTH_TENANT_MAX + 1]; /* whose: "" when anonymous */
	/* The tenant it belongs to, where tenant is the one it reads: they
	 * differ for a province's identity reading a member (access.c). */
	char home[AUTH_TENANT_MAX + 1];
	enum auth_role role; /* not for AUTH_ANONYMOUS */
	unsigned can;
	int64_t expires_us; /* 0: until revoked */
	unsigned char sha256[32];
};

const char *auth_role_name(enum auth_role r);
/* The role of a name, or -1. */
int auth_role_parse(const char *s);
unsigned auth_role_can(enum auth_role r);
const char *auth_can_name(int bit); /* "read", "ack", ... by bit index */
/* The role's name, or "anonymous". */
const char *auth_identity_role(const struct identity *who);

/* The identity of anonymous access from loopback (--anonymous-loopback). */
const struct identity *auth_anonymous(void);

struct auth;

struct auth *auth_new(void);
void auth_free(struct auth *a);

/*
 * Replaces the credentials held with the rows of READS_CREDENTIALS_SQL
 * (reads.h).  Returns 0, or -1 if the result is unusable (the old ones stay).
 */
int auth_replace(struct auth *a, PGresult *r)
    __attribute__((warn_unused_result));
/* Adds one (a session this server just opened, before its NOTIFY). */
int auth_add(struct auth *a, const struct identity *who);

void auth_remove(struct auth *a, const char *id);

/* The identity of a credential, or NULL (borrowed until the next change). */
const struct identity *auth_check(const struct auth *a, const char *credential,
				  int64_t now_us);
/* Whether the credential with this id is still good. */
bool auth_live(const struct auth *a, const char *id, int64_t now_us);
int auth_count(const struct auth *a);

/*
 * A new credential: "<prefix>_<id>_<secret>" into credential (at least
 * AUTH_CREDENTIAL_LEN + 1 bytes), its id and the SHA-256 of its secret.
 */
int auth_mint(const char *prefix, char *credential, char *id,
	      unsigned char sha256[32]);
void auth_hex(const unsigned char *in, size_t n, char *out);
/* Decodes exactly 2n hex digits; returns 0 or -1. */
int auth_hex_decode(const char *hex, unsigned char *out, size_t n);
void auth_sha256(const char *s, unsigned char out[32]);

/*
 * scrypt: stored is "scrypt$<log2 N>$<r>$<p>$<salt hex>$<hash hex>".
 * auth_password_hash returns 0 or -1; auth_password_verify takes as long
 * for a malformed stored value as for a real one.
 */
#define AUTH_HASH_LEN 160
int auth_password_hash(const char *password, char *stored, size_t len);
bool auth_password_verify(const char *password, const char *stored);
/* A stored value that matches no password, for unknown users. */
const char *auth_password_dummy(void);

/* A password's length in bytes, at a login and when one is set. */
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 128

#endif
