/*
 * ckpt_crypt.c - client-side encryption of checkpoints (OpenSSL EVP only).
 * Each checkpoint gets a fresh random 256-bit data key, wrapped with the
 * user's key by AES-256-GCM (random 96-bit nonce, the job and seq as
 * associated data) and stored in the manifest.  Every part is encrypted
 * after compression with AES-256-GCM under the data key: nonce = a random
 * 4-byte prefix (per checkpoint) || the part index (8 bytes, big-endian),
 * so no nonce repeats under one key; the stored part is ciphertext || tag.
 * The manifest is authenticated by HMAC-SHA256 over its exact bytes, stored
 * as manifest.mac (hex), with a key derived from the data key by HKDF-SHA256.
 * See docs/store-format.md, "Encryption".
 */
#include "ckpt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int ckpt_key_load(const char *path, unsigned char key[CKPT_KEY_LEN])
{
	char buf[200];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return log_fail(errno == ENOENT ? EX_NOINPUT : EX_IOERR, "cannot open key file '%s': %s", path,
				strerror(errno));
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n == CKPT_KEY_LEN) {
		memcpy(key, buf, CKPT_KEY_LEN);
	} else {
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
			n--;
		if (n != 2 * CKPT_KEY_LEN || ckpt_unhex_n(buf, (size_t)n, key)) {
			OPENSSL_cleanse(buf, sizeof(buf));
			return log_fail(EX_USAGE, "key file '%s' must hold 32 bytes, or 64 hex digits", path);
		}
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

void ckpt_hex_n(const unsigned char *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = 0;
}

int ckpt_unhex_n(const char *hex, size_t len, unsigned char *out)
{
	if (len % 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = hex[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (v < 0)
			return -1;
		if (i % 2)
			out[i / 2] |= (unsigned char)v;
		else
			out[i / 2] = (unsigned char)(v << 4);
	}
	return 0;
}

/* AES-256-GCM, whole buffer; enc: out = ct, tag written; else tag checked. */
static int crypt_gcm(int enc, const unsigned char *key, const unsigned char *nonce, const unsigned char *aad,
		     size_t aadlen, const unsigned char *in, size_t n, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, ok;

	ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CKPT_NONCE_LEN, NULL) &&
	     EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) &&
	     (!aadlen || EVP_CipherUpdate(c, NULL, &len, aad, (int)aadlen));
	for (size_t off = 0; ok && off < n;) {	/* EVP takes int lengths */
		int chunk = n - off > (1u << 30) ? 1 << 30 : (int)(n - off);
		ok = EVP_CipherUpdate(c, out + off, &len, in + off, chunk);
		off += (size_t)chunk;
	}
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CKPT_TAG_LEN, tag);
	ok = ok && EVP_CipherFinal_ex(c, out + n, &len);
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CKPT_TAG_LEN, tag);
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

static void crypt_wrap_aad(const char *job, uint64_t seq, char *aad, size_t n)
{
	snprintf(aad, n, "spotrun key wrap v1\n%s\n%llu", job, (unsigned long long)seq);
}

int ckpt_crypt_new(struct ckpt_crypt *c, const unsigned char *ukey, const char *job, uint64_t seq)
{
	char aad[400];

	memset(c, 0, sizeof(*c));
	if (RAND_bytes(c->dkey, CKPT_KEY_LEN) != 1 || RAND_bytes(c->prefix, sizeof(c->prefix)) != 1 ||
	    RAND_bytes(c->wrap_nonce, CKPT_NONCE_LEN) != 1)
		return log_fail(EX_SOFTWARE, "no random bytes from OpenSSL");
	crypt_wrap_aad(job, seq, aad, sizeof(aad));
	if (crypt_gcm(1, ukey, c->wrap_nonce, (const unsigned char *)aad, strlen(aad), c->dkey, CKPT_KEY_LEN,
		      c->wrapped, c->wrapped + CKPT_KEY_LEN))
		return log_fail(EX_SOFTWARE, "AES-256-GCM failed");
	c->on = c->have_key = 1;
	return 0;
}

int ckpt_crypt_unwrap(struct ckpt_crypt *c, const unsigned char *ukey, const char *job, uint64_t seq)
{
	char aad[400];

	crypt_wrap_aad(job, seq, aad, sizeof(aad));
	if (crypt_gcm(0, ukey, c->wrap_nonce, (const unsigned char *)aad, strlen(aad), c->wrapped, CKPT_KEY_LEN,
		      c->dkey, c->wrapped + CKPT_KEY_LEN))
		return log_fail(EX_DATAERR, "checkpoint %llu of '%s' is encrypted with another key "
				"(wrong --encrypt-key-file)", (unsigned long long)seq, job);
	c->have_key = 1;
	return 0;
}

void ckpt_crypt_nonce(const struct ckpt_crypt *c, uint64_t index, unsigned char nonce[CKPT_NONCE_LEN])
{
	memcpy(nonce, c->prefix, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (unsigned char)(index >> (56 - 8 * i));
}

int ckpt_crypt_part(const struct ckpt_crypt *c, int enc, uint64_t index, unsigned char *buf, size_t n,
		    size_t *outlen)
{
	unsigned char nonce[CKPT_NONCE_LEN], aad[8];

	ckpt_crypt_nonce(c, index, nonce);
	memcpy(aad, nonce + 4, 8);
	if (enc) {
		if (crypt_gcm(1, c->dkey, nonce, aad, 8, buf, n, buf, buf + n))
			return -1;
		*outlen = n + CKPT_TAG_LEN;
		return 0;
	}
	if (n < CKPT_TAG_LEN || crypt_gcm(0, c->dkey, nonce, aad, 8, buf, n - CKPT_TAG_LEN, buf,
					  buf + n - CKPT_TAG_LEN))
		return -1;
	*outlen = n - CKPT_TAG_LEN;
	return 0;
}

int ckpt_crypt_mac(const struct ckpt_crypt *c, const char *text, size_t n, unsigned char mac[32])
{
	static const char info[] = "spotrun manifest mac v1";
	unsigned char mkey[32];
	unsigned int maclen = 0;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)c->dkey, CKPT_KEY_LEN),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, sizeof(info) - 1),
		OSSL_PARAM_construct_end(),
	};
	int ok = kc && EVP_KDF_derive(kc, mkey, sizeof(mkey), p) > 0 &&
		 HMAC(EVP_sha256(), mkey, sizeof(mkey), (const unsigned char *)text, n, mac, &maclen) &&
		 maclen == 32;

	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
	OPENSSL_cleanse(mkey, sizeof(mkey));
	return ok ? 0 : log_fail(EX_SOFTWARE, "HKDF/HMAC failed");
}
