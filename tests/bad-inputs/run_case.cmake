# Runs one bad-input case (tests/bad-inputs/manifest.txt) through the real CLI:
#   cmake -DTOOL=... -DARGS=... -DEXIT=... -DEXPECT=... -DFILES=... -DSRC=... -DWORK=...
#         [-DPATCH=file|old|new] -P run_case.cmake
# The case's input files are copied into a fresh WORK directory (the source
# tree is never written). @W@ in ARGS and EXPECT is WORK, @SRC@ the source root.
# PATCH copies the bundled data/ to WORK/data and replaces OLD by NEW in FILE.
# Passes when the exit code is EXIT, stderr+stdout contains EXPECT, and — for a
# failing run — no file in WORK was changed, removed or added (no partial or
# temporary output left behind).
cmake_minimum_required(VERSION 3.25)  # new @VAR@ rules: @W@ is literal text here
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
file(COPY "${FILES}/" DESTINATION "${WORK}")
if(PATCH)
  string(REPLACE "|" ";" _p "${PATCH}")
  list(GET _p 0 _file)
  list(GET _p 1 _old)
  list(GET _p 2 _new)
  file(COPY "${SRC}/data" DESTINATION "${WORK}")
  file(READ "${WORK}/data/${_file}" _text)
  string(FIND "${_text}" "${_old}" _at)
  if(_at EQUAL -1)
    message(FATAL_ERROR "PATCH: '${_old}' not found in data/${_file}")
  endif()
  string(REPLACE "${_old}" "${_new}" _text "${_text}")
  file(WRITE "${WORK}/data/${_file}" "${_text}")
endif()

function(snapshot out)
  file(GLOB_RECURSE _all LIST_DIRECTORIES false RELATIVE "${WORK}" "${WORK}/*")
  list(SORT _all)
  set(_s "")
  foreach(_f ${_all})
    file(SHA256 "${WORK}/${_f}" _h)
    string(APPEND _s "${_f}=${_h}\n")
  endforeach()
  set(${out} "${_s}" PARENT_SCOPE)
endfunction()
snapshot(_before)

string(REPLACE "@W@" "${WORK}" ARGS "${ARGS}")
string(REPLACE "@SRC@" "${SRC}" ARGS "${ARGS}")
string(REPLACE "@W@" "${WORK}" EXPECT "${EXPECT}")
string(REPLACE "@SRC@" "${SRC}" EXPECT "${EXPECT}")
separate_arguments(_argv UNIX_COMMAND "${ARGS}")
execute_process(COMMAND ${TOOL} ${_argv}
                WORKING_DIRECTORY "${WORK}"
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err
                TIMEOUT 60)
set(_all_out "${_err}${_out}")
if(NOT "${_rc}" STREQUAL "${EXIT}")
  message(FATAL_ERROR "exit code ${_rc}, expected ${EXIT}\n--- output ---\n${_all_out}")
endif()
string(FIND "${_all_out}" "${EXPECT}" _pos)
if(EXPECT STREQUAL "(no output)")
  # The run writes to a file: stdout and stderr stay empty.
  if(NOT "${_all_out}" STREQUAL "")
    message(FATAL_ERROR "expected no output, got:\n${_all_out}")
  endif()
elseif(_pos EQUAL -1)
  message(FATAL_ERROR "message not found:\n  ${EXPECT}\n--- output ---\n${_all_out}")
endif()
if(NOT EXIT EQUAL 0)
  snapshot(_after)
  if(NOT "${_before}" STREQUAL "${_after}")
    message(FATAL_ERROR "a failing run changed its directory:\nbefore:\n${_before}\nafter:\n${_after}")
  endif()
endif()
file(REMOVE_RECURSE "${WORK}")
