# Install rules and the CMake package `iavl`, for find_package(iavl CONFIG REQUIRED):
#   iavl::iavl     the library (always)
#   iavl::leveldb  the LevelDB node store, the package's `leveldb` component; exported only
#                  when this build defines the target iavl_leveldb
# Included by the top-level CMakeLists.txt after every library target is defined.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(IAVL_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/iavl)

# The library is header-mostly: the inline code in detail/ is part of what a consumer compiles.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/iavl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")

install(TARGETS iavl EXPORT iavl_targets INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT iavl_targets NAMESPACE iavl:: FILE iavlTargets.cmake DESTINATION ${IAVL_PACKAGE_DIR})

set(IAVL_PACKAGE_COMPONENTS "")
if(TARGET iavl_leveldb)
  set_target_properties(iavl_leveldb PROPERTIES EXPORT_NAME leveldb)  # iavl::leveldb
  install(TARGETS iavl_leveldb EXPORT iavl_leveldb_targets INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT iavl_leveldb_targets NAMESPACE iavl:: FILE iavlLeveldbTargets.cmake
          DESTINATION ${IAVL_PACKAGE_DIR})
  list(APPEND IAVL_PACKAGE_COMPONENTS leveldb)
endif()

if(TARGET iavl_tool)
  get_target_property(iavl_type iavl TYPE)
  if(iavl_type STREQUAL "SHARED_LIBRARY")  # let the installed tool find libiavl.so in the prefix
    file(RELATIVE_PATH iavl_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
    set_target_properties(iavl_tool PROPERTIES INSTALL_RPATH "$ORIGIN/${iavl_bin_to_lib}")
  endif()
  install(TARGETS iavl_tool)
endif()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/iavlConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/iavlConfig.cmake INSTALL_DESTINATION ${IAVL_PACKAGE_DIR})
# 0.x: a new minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/iavlConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/iavlConfig.cmake ${PROJECT_BINARY_DIR}/iavlConfigVersion.cmake
        DESTINATION ${IAVL_PACKAGE_DIR})
