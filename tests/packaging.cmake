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

# Separate consumer projects: they do not depend on the build flags, so a sanitizer build skips them.
if(NOT IAVL_SANITIZE)
  set(packaging_test ${CMAKE_CURRENT_SOURCE_DIR}/packaging_test.sh)
  set(packaging_work ${CMAKE_CURRENT_BINARY_DIR}/packaging)
  set(packaging_tests packaging.add_subdirectory)
  add_test(NAME packaging.add_subdirectory COMMAND bash ${packaging_test} add_subdirectory ${packaging_work}/subdir)
  if(IAVL_INSTALL)
    set(components "")
    if(TARGET iavl_leveldb)
      set(components leveldb)
    endif()
    add_test(NAME packaging.install
             COMMAND bash ${packaging_test} install ${packaging_work}/install ${PROJECT_BINARY_DIR} ${components})
    list(APPEND packaging_tests packaging.install)
  endif()
  set_tests_properties(${packaging_tests} PROPERTIES LABELS packaging
                       ENVIRONMENT "CMAKE_GENERATOR=${CMAKE_GENERATOR};CXX=${CMAKE_CXX_COMPILER}")
endif()
