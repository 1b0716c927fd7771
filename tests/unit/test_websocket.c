/* RFC 6455 frames (src/daemon/websocket.h): the handshake's accept key (the RFC's own example),
 * the RFC's masked "Hello", fragments with a ping between them, text checked as UTF-8 across
 * fragments, and every protocol error a hostile client can make answered with the right close
 * code; the server's frame headers at each length boundary. */
#include <errno.h>
#include <string.h>

#include "daemon/websocket.h"
#include "test.h"

/* A client frame: header, mask, masked payload, into out; returns its length. */
static size_t frame(uint8_t *out, unsigned first_byte, const void *payload, size_t len)
{
    static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
    size_t h, i;

    h = websocket_header(out, 0, len);
    out[0] = (uint8_t)first_byte;
    out[1] |= 0x80;
    memcpy(out + h, mask, 4);
    for (i = 0; i < len; i++)
        out[h + 4 + i] = ((const uint8_t *)payload)[i] ^ mask[i & 3];
    return h + 4 + len;
}

static void test_accept(void)
{
    char out[WEBSOCKET_ACCEPT_LEN];

    /* RFC 6455 §1.3. */
    CHECK(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out) == 0);
    CHECK(!strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    CHECK(websocket_accept_key("", out) == -EINVAL);
    CHECK(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=", out) == -EINVAL);
    CHECK(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ===", out) == -EINVAL);
    CHECK(websocket_accept_key("dGhlIHNhbXBsZSBub25j$Q==", out) == -EINVAL);
    CHECK(websocket_accept_key("dGhlIHNhbXBsZSBub25jZR==", out) == -EINVAL); /* 17th bits */
}

static void test_frames(void)
{
    /* RFC 6455 §5.7: a single-frame masked text message "Hello". */
    uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t buf[256];
    struct websocket_rx rx = {0};
    struct websocket_frame f;
    size_t n, i;

    for (i = 0; i < sizeof(hello); i++)
        CHECK(websocket_parse(&rx, hello, i, &f) == 0);
    CHECK(websocket_parse(&rx, hello, sizeof(hello), &f) == (long)sizeof(hello));
    CHECK(f.opcode == WEBSOCKET_TEXT && f.fin && f.text && f.len == 5);
    CHECK(!memcmp(f.payload, "Hello", 5));

    /* "é" split between two fragments, a ping between them. */
    n = frame(buf, 0x01, "caf\xc3", 4);
    CHECK(websocket_parse(&rx, buf, n, &f) == (long)n && !f.fin && f.text && rx.in_message);
    n = frame(buf, 0x89, "hi", 2);
    CHECK(websocket_parse(&rx, buf, n, &f) == (long)n && f.opcode == WEBSOCKET_PING);
    CHECK(f.len == 2 && !memcmp(f.payload, "hi", 2));
    n = frame(buf, 0x80, "\xa9!", 2);
    CHECK(websocket_parse(&rx, buf, n, &f) == (long)n && f.fin && f.text && !rx.in_message);

    /* Binary: any bytes. */
    n = frame(buf, 0x82, "\xff\x00\xc3", 3);
    CHECK(websocket_parse(&rx, buf, n, &f) == (long)n && !f.text && f.len == 3);
    CHECK(!memcmp(f.payload, "\xff\x00\xc3", 3));

    /* A close with a code and a reason; an empty close is 1005. */
    n = frame(buf, 0x88,
              "\x03\xe8"
              "bye",
              5);
    CHECK(websocket_parse(&rx, buf, n, &f) == (long)n && f.close_code == 1000);
    n = frame(buf, 0x88, "", 0);
    CHECK(websocket_parse(&rx, buf, n, &f) == (long)n && f.close_code == 1005);
}

/* Each hostile frame fails with its code; a fresh parser state for each. */
static void expect_error(unsigned first_byte, const void *payload, size_t len, long err,
                         unsigned code, bool in_message)
{
    struct websocket_rx rx = {.in_message = in_message};
    struct websocket_frame f;
    uint8_t buf[300];
    size_t n = frame(buf, first_byte, payload, len);

    CHECK(websocket_parse(&rx, buf, n, &f) == err);
    CHECK(rx.close_code == code);
}

static void test_errors(void)
{
    static uint8_t big[WEBSOCKET_BUF_LEN + 16], payload[WEBSOCKET_FRAME_MAX];
    struct websocket_rx rx = {0};
    struct websocket_frame f;
    uint8_t unmasked[] = {0x82, 0x01, 'x'};
    uint8_t huge[10] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
    size_t n;

    CHECK(websocket_parse(&rx, unmasked, sizeof(unmasked), &f) == -EPROTO);
    CHECK(rx.close_code == WEBSOCKET_PROTOCOL_ERROR);
    rx.close_code = 0;
    CHECK(websocket_parse(&rx, huge, sizeof(huge), &f) == -EPROTO); /* 64-bit length MSB */
    expect_error(0xc2, "x", 1, -EPROTO, 1002, false);               /* RSV1 */
    expect_error(0x83, "x", 1, -EPROTO, 1002, false);               /* reserved opcode */
    expect_error(0x80, "x", 1, -EPROTO, 1002, false);               /* continuation of nothing */
    expect_error(0x82, "x", 1, -EPROTO, 1002, true);                /* new message inside one */
    expect_error(0x09, "x", 1, -EPROTO, 1002, false);               /* fragmented ping */
    expect_error(0x88, "\x03", 1, -EPROTO, 1002, false);            /* close of one byte */
    expect_error(0x88, "\x03\xed", 2, -EPROTO, 1002, false);        /* close code 1005 sent */
    expect_error(0x88, "\x03\xe8\xff", 3, -EILSEQ, 1007, false);
    expect_error(0x81, "\xc0\xaf", 2, -EILSEQ, 1007, false);         /* overlong '/' */
    expect_error(0x81, "\xed\xa0\x80", 3, -EILSEQ, 1007, false);     /* a surrogate */
    expect_error(0x81, "\xf4\x90\x80\x80", 4, -EILSEQ, 1007, false); /* past U+10FFFF */
    expect_error(0x81, "ab\xc3", 3, -EILSEQ, 1007, false);           /* ends mid-character */
    memset(big, 'a', sizeof(big));
    expect_error(0x89, big, 126, -EPROTO, 1002, false); /* a control frame over 125 */

    /* One byte over the frame limit: refused from its header, before the payload comes. */
    rx = (struct websocket_rx){0};
    n = websocket_header(big, WEBSOCKET_BINARY, WEBSOCKET_FRAME_MAX + 1);
    big[1] |= 0x80;
    CHECK(websocket_parse(&rx, big, n, &f) == -EMSGSIZE && rx.close_code == 1009);
    rx = (struct websocket_rx){0};
    n = frame(big, 0x82, payload, WEBSOCKET_FRAME_MAX);
    CHECK(n <= WEBSOCKET_BUF_LEN && websocket_parse(&rx, big, n, &f) == (long)n);
}

static void test_headers(void)
{
    uint8_t h[WEBSOCKET_HDR_MAX];

    CHECK(websocket_header(h, WEBSOCKET_BINARY, 125) == 2 && h[0] == 0x82 && h[1] == 125);
    CHECK(websocket_header(h, WEBSOCKET_BINARY, 126) == 4 && h[1] == 126 && h[2] == 0 &&
          h[3] == 126);
    CHECK(websocket_header(h, WEBSOCKET_PONG, 65535) == 4 && h[0] == 0x8a && h[2] == 0xff);
    CHECK(websocket_header(h, WEBSOCKET_BINARY, 65536) == 10 && h[1] == 127 && h[7] == 1 &&
          h[8] == 0 && h[9] == 0);
}

int main(void)
{
    test_accept();
    test_frames();
    test_errors();
    test_headers();
    return test_finish("websocket");
}
