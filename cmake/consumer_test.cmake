# Installs the built tree into a scratch prefix, then builds and runs a consumer project
# that uses find_package(tern), and a second build of it through pkg-config.
# Run by CTest as: cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DC_COMPILER=... -P consumer_test.cmake
set(prefix "${BUILD_DIR}/consumer-test/prefix")
set(work "${BUILD_DIR}/consumer-test/build")
file(REMOVE_RECURSE "${BUILD_DIR}/consumer-test")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(LAST_OUT "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/cmake_consumer" -B "${work}"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER})
run(${CMAKE_COMMAND} --build "${work}")
set(ENV{LD_LIBRARY_PATH} "${prefix}/lib:$ENV{LD_LIBRARY_PATH}")
run("${work}/consumer_shared")
message("${LAST_OUT}")
run("${work}/consumer_static")
message("${LAST_OUT}")

find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  file(GLOB pcdir "${prefix}/lib*/pkgconfig")
  set(ENV{PKG_CONFIG_PATH} "${pcdir}")
  run(${PKG_CONFIG} --cflags --libs tern)
  string(STRIP "${LAST_OUT}" flags)
  separate_arguments(flags)
  run(${C_COMPILER} "${SOURCE_DIR}/tests/cmake_consumer/main.c" ${flags} -o "${work}/consumer_pc")
  run("${work}/consumer_pc")
  message("pkg-config OK: ${LAST_OUT}")
else()
  message(FATAL_ERROR "pkg-config not found")
endif()
