// See leveldb_standin.cmake: a library that links LevelDB and defines nothing of the store's API.
#include <leveldb/db.h>

int iavl_leveldb_standin_major_version() { return leveldb::kMajorVersion; }
