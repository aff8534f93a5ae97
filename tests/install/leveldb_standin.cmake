# A stand-in for the LevelDB store library (target iavl_leveldb) until it lands, injected with
# -DCMAKE_PROJECT_INCLUDE: it exercises the package's `leveldb` component (export, find_dependency)
# and nothing of the store's API. Remove it, and the test that uses it, once iavl_leveldb exists.
find_package(Threads REQUIRED)  # Debian's leveldb package uses Threads::Threads without finding it
find_package(leveldb CONFIG REQUIRED)
add_library(iavl_leveldb STATIC ${CMAKE_CURRENT_LIST_DIR}/leveldb_standin.cpp)
add_library(iavl::leveldb ALIAS iavl_leveldb)
target_link_libraries(iavl_leveldb PUBLIC iavl PRIVATE leveldb::leveldb)
