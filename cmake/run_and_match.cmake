# Runs one command for CTest and passes only if it exits 0 AND its output (stdout and
# stderr together) matches REGEX. (CTest's PASS_REGULAR_EXPRESSION alone ignores the
# exit code, which valgrind's --error-exitcode and AddressSanitizer report through.)
#   cmake -DCMD=prog@@arg1@@arg2 -DREGEX=... [-DINPUT=file-for-stdin] -P run_and_match.cmake
string(REPLACE "@@" ";" cmd "${CMD}")
if(DEFINED INPUT AND NOT INPUT STREQUAL "")
  execute_process(COMMAND ${cmd} INPUT_FILE "${INPUT}" RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE err)
else()
  execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
endif()
message("${out}")
message("${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "exit status ${rc}: ${cmd}")
endif()
if(NOT "${out}${err}" MATCHES "${REGEX}")
  message(FATAL_ERROR "the output does not match: ${REGEX}")
endif()
message("run_and_match OK")
