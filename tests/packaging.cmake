# How applications consume iavl-cpp. Included by tests/CMakeLists.txt.

# Every installed header compiles on its own: one translation unit per header, built with the
# tests. New headers are picked up when CMake re-runs (CONFIGURE_DEPENDS).
file(GLOB_RECURSE iavl_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/include
     ${PROJECT_SOURCE_DIR}/include/iavl/*.hpp)
set(iavl_header_tus "")
foreach(header IN LISTS iavl_headers)
  string(MAKE_C_IDENTIFIER ${header} name)
  set(tu ${CMAKE_CURRENT_BINARY_DIR}/header_check/${name}.cpp)
  file(CONFIGURE OUTPUT ${tu} CONTENT "#include \"${header}\"\n")  # rewritten only when it changes
  list(APPEND iavl_header_tus ${tu})
endforeach()
add_library(iavl_header_check OBJECT ${iavl_header_tus})
target_link_libraries(iavl_header_check PRIVATE iavl::iavl)
if(TARGET iavl_leveldb)
  target_link_libraries(iavl_header_check PRIVATE iavl_leveldb)
endif()
