# Compiler flags, per target (cf. libuv): memc_target_flags(T) gives T the
# project's warnings, -Werror when MEMC_WERROR, the sanitizers when
# MEMC_SANITIZE (or MEMC_FUZZ), fuzzer coverage when MEMC_FUZZ, and _GNU_SOURCE (memrchr, pipe2, accept4 ...).  Nothing is
# set directory-wide, so a target without this call builds as CMake says.
function(memc_target_flags target)
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
  # Messages are built in fixed buffers and truncated on purpose (bounded
  # memory, bounded log lines), so -Wformat-truncation would only flag that.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wstrict-prototypes
                                           -Wformat=2 -Wvla)
  if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-format-truncation)
  endif()
  if(MEMC_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(MEMC_SANITIZE OR MEMC_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(MEMC_FUZZ)
    # coverage for the fuzzers in every library they link
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()
