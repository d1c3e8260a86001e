// The one C header the Swift LMDB wrapper (ATPLMDB) imports: Debian's liblmdb (liblmdb-dev),
// found through pkg-config "lmdb".
#ifndef ATP_CLMDB_SHIM_H
#define ATP_CLMDB_SHIM_H
#include <lmdb.h>
#endif
