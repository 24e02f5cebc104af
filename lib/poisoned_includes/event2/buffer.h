// A poisoned stand-in for libevent's <event2/buffer.h>, first on //lib:public_header_test's include
// path: a public header that includes it fails that test.
#error \
    "libevent (<event2/buffer.h>) must not reach a user's translation unit: a header that constellation.h includes pulls it in (see the include chain above)"
