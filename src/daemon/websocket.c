/* RFC 6455 websockets, the server's side (websocket.h). */
#include "daemon/websocket.h"

#include <errno.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 (RFC 4648 §4) of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
static void base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i;

    for (i = 0; i + 2 < n; i += 3, out += 4) {
        out[0] = b64[in[i] >> 2];
        out[1] = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        out[2] = b64[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        out[3] = b64[in[i + 2] & 63];
    }
    if (n - i == 1) {
        out[0] = b64[in[i] >> 2];
        out[1] = b64[(in[i] & 3) << 4];
        out[2] = out[3] = '=';
        out += 4;
    } else if (n - i == 2) {
        out[0] = b64[in[i] >> 2];
        out[1] = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        out[2] = b64[(in[i + 1] & 15) << 2];
        out[3] = '=';
        out += 4;
    }
    *out = '\0';
}

int websocket_accept_key(const char *key, char out[WEBSOCKET_ACCEPT_LEN])
{
    /* §1.3: the GUID every server appends. */
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[24 + sizeof(guid)];
    uint8_t sha1[20];

    /* 16 bytes are 22 base64 characters and "=="; the last character carries 4 bits, so
     * only every fourth letter is a canonical encoding (§4.2.1 item 5 asks for 16 bytes). */
    if (strlen(key) != 24 || strspn(key, b64) != 22 || strcmp(key + 22, "==") ||
        (strchr(b64, key[21]) - b64) % 16)
        return -EINVAL;
    memcpy(buf, key, 24);
    memcpy(buf + 24, guid, sizeof(guid));
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, buf, 24 + sizeof(guid) - 1, sha1))
        return -EIO;
    base64_encode(sha1, sizeof(sha1), out);
    return 0;
}

/* Checks text bytes as UTF-8 (RFC 3629 §4, the well-formed byte sequences), carrying a
 * code point split between fragments in rx. */
static bool utf8_feed(struct websocket_rx *rx, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t b = p[i];

        if (rx->utf8_need) {
            if (b < rx->utf8_lo || b > rx->utf8_hi)
                return false;
            rx->utf8_need--;
            rx->utf8_lo = 0x80;
            rx->utf8_hi = 0xbf;
            continue;
        }
        rx->utf8_lo = 0x80;
        rx->utf8_hi = 0xbf;
        if (b < 0x80)
            continue;
        if (b >= 0xc2 && b <= 0xdf)
            rx->utf8_need = 1;
        else if (b >= 0xe0 && b <= 0xef)
            rx->utf8_need = 2;
        else if (b >= 0xf0 && b <= 0xf4)
            rx->utf8_need = 3;
        else
            return false;
        /* No overlong forms, no surrogates, nothing past U+10FFFF. */
        if (b == 0xe0)
            rx->utf8_lo = 0xa0;
        else if (b == 0xed)
            rx->utf8_hi = 0x9f;
        else if (b == 0xf0)
            rx->utf8_lo = 0x90;
        else if (b == 0xf4)
            rx->utf8_hi = 0x8f;
    }
    return true;
}

static long fail(struct websocket_rx *rx, uint16_t code, long err)
{
    rx->close_code = code;
    return err;
}

/* §7.4: the codes a peer may send. */
static bool close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

long websocket_parse(struct websocket_rx *rx, uint8_t *buf, size_t len, struct websocket_frame *f)
{
    size_t hdr = 2, i;
    uint64_t plen;
    uint8_t *mask;
    unsigned op;

    memset(f, 0, sizeof(*f));
    if (len < 2)
        return 0;
    f->fin = buf[0] & 0x80;
    op = buf[0] & 0x0f;
    f->opcode = op;
    /* §5.2: no extension was negotiated, so RSV1-3 must be 0. */
    if (buf[0] & 0x70)
        return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
    /* §5.1: a client masks every frame. */
    if (!(buf[1] & 0x80))
        return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
    plen = buf[1] & 0x7f;
    if (op >= 0x8) {
        /* §5.5: control frames are whole and short; they may come between fragments. */
        if ((op != WEBSOCKET_CLOSE && op != WEBSOCKET_PING && op != WEBSOCKET_PONG) || !f->fin ||
            plen > 125)
            return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
    } else if (op == WEBSOCKET_CONT) {
        if (!rx->in_message)
            return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
    } else if (op == WEBSOCKET_TEXT || op == WEBSOCKET_BINARY) {
        /* §5.4: a new message cannot start inside a fragmented one. */
        if (rx->in_message)
            return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
    } else {
        return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
    }
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        hdr = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        /* §5.2: the most significant bit must be 0. */
        if (buf[2] & 0x80)
            return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
        for (plen = 0, i = 2; i < 10; i++)
            plen = plen << 8 | buf[i];
        hdr = 10;
    }
    if (plen > WEBSOCKET_FRAME_MAX)
        return fail(rx, WEBSOCKET_TOO_BIG, -EMSGSIZE);
    if (len < hdr + 4 + plen)
        return 0;
    mask = buf + hdr;
    f->payload = buf + hdr + 4;
    f->len = (size_t)plen;
    for (i = 0; i < f->len; i++)
        f->payload[i] ^= mask[i & 3];

    if (op == WEBSOCKET_CLOSE) {
        f->close_code = 1005;
        if (f->len == 1)
            return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
        if (f->len >= 2) {
            struct websocket_rx reason = {0};

            f->close_code = (uint16_t)(f->payload[0] << 8 | f->payload[1]);
            if (!close_code_valid(f->close_code))
                return fail(rx, WEBSOCKET_PROTOCOL_ERROR, -EPROTO);
            if (!utf8_feed(&reason, f->payload + 2, f->len - 2) || reason.utf8_need)
                return fail(rx, WEBSOCKET_INVALID_DATA, -EILSEQ);
        }
    } else if (op < 0x8) {
        if (op != WEBSOCKET_CONT) {
            rx->text = op == WEBSOCKET_TEXT;
            rx->utf8_need = 0;
        }
        f->text = rx->text;
        if (rx->text && (!utf8_feed(rx, f->payload, f->len) || (f->fin && rx->utf8_need)))
            return fail(rx, WEBSOCKET_INVALID_DATA, -EILSEQ);
        rx->in_message = !f->fin;
    }
    return (long)(hdr + 4 + plen);
}

size_t websocket_header(uint8_t *hdr, unsigned opcode, size_t len)
{
    size_t i;

    hdr[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        hdr[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        return 4;
    }
    hdr[1] = 127;
    for (i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}
