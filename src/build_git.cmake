# Writes OUT (build_git.h) with `git describe` of the source tree SRC, at every build: the
# commit recorded in traces is the one the binary was built from, not the one CMake was
# configured at. The file is rewritten only when the text changes, so a build with no new
# commit recompiles nothing.
execute_process(COMMAND git describe --always --dirty --tags
  WORKING_DIRECTORY ${SRC} OUTPUT_VARIABLE git OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT git)
  set(git "unknown")
endif()
set(text "/* Generated at build time by src/build_git.cmake; do not edit. */\n#define LT_GIT_DESCRIBE \"${git}\"\n")
set(old "")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
