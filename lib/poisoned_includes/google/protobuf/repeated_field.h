// A poisoned stand-in for protobuf's <google/protobuf/repeated_field.h>, first on //lib:public_header_test's include
// path: a public header that includes it fails that test.
#error \
    "protobuf (<google/protobuf/repeated_field.h>) must not reach a user's translation unit: a header that constellation.h includes pulls it in (see the include chain above)"
