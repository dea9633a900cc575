// The same consumer as C++: the public header must compile and link as C++.
#include <kvz.h>

#include <cstdio>

int main()
{
    const kvz_version_info v = kvz_version();
    kvz_isa isa;
    if (kvz_isa_from_name("generic", &isa) != KVZ_OK || isa != KVZ_ISA_GENERIC)
        return 1;
    if (kvz_convert(nullptr, KVZ_DTYPE_F32, nullptr, KVZ_DTYPE_BF16, 4) != KVZ_ERR_NULL)
        return 1;
    std::printf("consumer (C++): libkvz %s, %s\n", v.string, kvz_strerror(KVZ_OK));
    return 0;
}
