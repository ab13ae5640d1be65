# Debian package: scripts/package (prefix /usr, sysconfdir /etc, the
# compiler and linker flags of dpkg-buildflags).  Depends come from
# dpkg-shlibdeps; the binary is stripped, its debug symbols go into a
# -dbgsym package.  debian/ holds the maintainer scripts, the changelog and
# the copyright file.
file(STRINGS debian/changelog MEMC_DEB_CHANGELOG_TOP LIMIT_COUNT 1)
if(NOT MEMC_DEB_CHANGELOG_TOP MATCHES "^memc-load \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "debian/changelog starts with '${MEMC_DEB_CHANGELOG_TOP}': "
                      "add an entry for ${PROJECT_VERSION}")
endif()
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/changelog.gz
  COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/debian/changelog > ${CMAKE_BINARY_DIR}/changelog.gz
  DEPENDS ${CMAKE_SOURCE_DIR}/debian/changelog
  COMMENT "gzip debian/changelog")
add_custom_target(deb-changelog ALL DEPENDS ${CMAKE_BINARY_DIR}/changelog.gz)
# a native package: its Debian changelog is changelog.gz
install(FILES ${CMAKE_BINARY_DIR}/changelog.gz debian/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME memc-load)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "memc-load developers <dev@memc-load.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "load gzipped app-install dumps from a spool into memcached")
set(CPACK_PACKAGE_DESCRIPTION "memc-load watches a spool directory for *.tsv.gz dumps and loads\n every line into memcached as a protobuf UserApps value, as a systemd service.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# shared libraries: dpkg-shlibdeps, appended to these; systemd for
# systemd-sysusers / systemd-tmpfiles in postinst and to run the unit
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
# not Recommends: Debian's memcached would start a server on 11211, which the
# default config does not use; prometheus-node-exporter's textfile collector
# reads /var/lib/prometheus/node-exporter, where metrics_file points (without
# it that directory is missing: one info line, no metrics)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "memcached, prometheus-node-exporter")
# a stripped binary; scripts/package keeps its debug symbols in a separate
# file (CPack 3.25's -dbgsym .ddeb lists absolute paths in its md5sums)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/debian/postinst;${CMAKE_SOURCE_DIR}/debian/prerm;${CMAKE_SOURCE_DIR}/debian/postrm;${CMAKE_SOURCE_DIR}/debian/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
