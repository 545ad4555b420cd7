# The C and C++ examples of c_examples/ and their tests: each runs on the reference
# model, plain, under valgrind (memcheck) and built with AddressSanitizer.
# Included by the top-level CMakeLists.txt, which defines tern::tern, _tern_out_dir and
# TERN_REFERENCE_DIR.

find_package(Threads REQUIRED)

set(TERN_WARNINGS -Wall -Wextra -Werror)
option(TERN_ASAN "Also build the C examples with AddressSanitizer and test them" ON)

# tern_add_example(NAME SOURCE): the example, linked with the shared library, and (with
# TERN_ASAN) a copy NAME_asan built with -fsanitize=address.
function(tern_add_example name source)
  add_executable(tern_${name} ${source})
  target_link_libraries(tern_${name} PRIVATE tern::tern Threads::Threads)
  target_compile_options(tern_${name} PRIVATE ${TERN_WARNINGS})
  set_target_properties(tern_${name} PROPERTIES OUTPUT_NAME ${name} BUILD_RPATH "${_tern_out_dir}")
  if(TERN_ASAN)
    add_executable(tern_${name}_asan ${source})
    target_link_libraries(tern_${name}_asan PRIVATE tern::tern Threads::Threads)
    target_compile_options(tern_${name}_asan PRIVATE ${TERN_WARNINGS} -g -fsanitize=address -fno-omit-frame-pointer)
    target_link_options(tern_${name}_asan PRIVATE -fsanitize=address)
    set_target_properties(tern_${name}_asan PROPERTIES OUTPUT_NAME ${name}_asan BUILD_RPATH "${_tern_out_dir}")
  endif()
endfunction()

tern_add_example(simple c_examples/simple.c)
tern_add_example(chat c_examples/chat.c)
tern_add_example(embed_threads c_examples/embed_threads.c)
tern_add_example(bad_args c_examples/bad_args.c)
tern_add_example(greedy c_examples/greedy.cpp)
foreach(t tern_greedy tern_greedy_asan)
  if(TARGET ${t})
    set_target_properties(${t} PROPERTIES CXX_STANDARD 11 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
    target_compile_options(${t} PRIVATE -pedantic)
  endif()
endforeach()

if(NOT BUILD_TESTING)
  return()
endif()

set(_tern_ref_model "${TERN_REFERENCE_DIR}/bitnet25/ggml-model-i2s.gguf")
if(NOT EXISTS "${_tern_ref_model}")
  return() # the top-level file already warned (or failed under CI)
endif()

find_program(TERN_VALGRIND valgrind)
if(NOT TERN_VALGRIND)
  if("$ENV{CI}" STREQUAL "true")
    message(FATAL_ERROR "CI=true and valgrind is missing (.ci/run installs it)")
  endif()
  message(WARNING "valgrind not found: SKIPPING the valgrind runs of the C examples")
endif()
# memcheck: any error, or memory "definitely lost", fails the test.
set(TERN_VALGRIND_ARGS --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --quiet)

# tern_example_test(NAME TARGET REGEX [STDIN FILE] [VALGRIND_ARGS ...] ARGS ...): runs
# TARGET with ARGS plainly and as its ASan build, and under valgrind with VALGRIND_ARGS
# (a smaller run: memcheck is ~50x slower) when given, else ARGS; each run must exit 0
# and print REGEX.
function(tern_example_test name target regex)
  cmake_parse_arguments(T "" "STDIN" "VALGRIND_ARGS" ${ARGN})
  set(variants plain)
  if(TERN_VALGRIND)
    list(APPEND variants valgrind)
  endif()
  if(TERN_ASAN)
    list(APPEND variants asan)
  endif()
  foreach(v ${variants})
    if(v STREQUAL "valgrind")
      set(cmd ${TERN_VALGRIND} ${TERN_VALGRIND_ARGS} $<TARGET_FILE:${target}>)
      set(test_name ${name}_valgrind)
    elseif(v STREQUAL "asan")
      set(cmd $<TARGET_FILE:${target}_asan>)
      set(test_name ${name}_asan)
    else()
      set(cmd $<TARGET_FILE:${target}>)
      set(test_name ${name})
    endif()
    if(v STREQUAL "valgrind" AND T_VALGRIND_ARGS)
      list(APPEND cmd ${T_VALGRIND_ARGS})
    else()
      list(APPEND cmd ${T_UNPARSED_ARGUMENTS})
    endif()
    list(JOIN cmd "@@" joined)
    add_test(NAME ${test_name} COMMAND ${CMAKE_COMMAND} "-DCMD=${joined}" "-DREGEX=${regex}"
      "-DINPUT=${T_STDIN}" -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/run_and_match.cmake)
    set_tests_properties(${test_name} PROPERTIES TIMEOUT 900
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1")
  endforeach()
endfunction()

file(WRITE ${CMAKE_BINARY_DIR}/chat_input.txt "Hello there\nTell me more\n")
tern_example_test(simple tern_simple "ids:( [0-9]+)+" "${_tern_ref_model}" "Once upon a time" 12 42
  VALGRIND_ARGS "${_tern_ref_model}" "Once upon" 2 42)
tern_example_test(greedy_cpp tern_greedy "ids:( [0-9]+)+" "${_tern_ref_model}" "Hello" 8
  VALGRIND_ARGS "${_tern_ref_model}" "Hello" 2)
tern_example_test(embed_threads tern_embed_threads "all 2 threads match" "${_tern_ref_model}" 2 8
  VALGRIND_ARGS "${_tern_ref_model}" 2 2)
tern_example_test(bad_args tern_bad_args "bad_args: [0-9]+ checks passed" "${_tern_ref_model}")
tern_example_test(chat tern_chat "turn 2: evaluated [1-9][0-9]* prompt tokens, reused [1-9]"
  STDIN ${CMAKE_BINARY_DIR}/chat_input.txt "${_tern_ref_model}" chatml 6
  VALGRIND_ARGS "${_tern_ref_model}" chatml 2)

# ---- Java: a JNI shim and a smoke test (when a JDK is installed) ----
# jni.h is looked for in the JDK that holds javac (FindJNI also wants AWT and libjvm, which
# headless JDKs and some layouts lack; the shim needs neither).
find_package(Java COMPONENTS Development)
set(_tern_jni_dirs "")
if(Java_FOUND)
  get_filename_component(_tern_javac "${Java_JAVAC_EXECUTABLE}" REALPATH)
  get_filename_component(_tern_jdk "${_tern_javac}" DIRECTORY)
  get_filename_component(_tern_jdk "${_tern_jdk}" DIRECTORY)
  find_path(TERN_JNI_INCLUDE jni.h HINTS "${_tern_jdk}/include" "$ENV{JAVA_HOME}/include")
  if(TERN_JNI_INCLUDE)
    string(TOLOWER "${CMAKE_SYSTEM_NAME}" _tern_os)
    set(_tern_jni_dirs "${TERN_JNI_INCLUDE}" "${TERN_JNI_INCLUDE}/${_tern_os}")
  endif()
endif()
if(_tern_jni_dirs)
  include(UseJava)
  add_jar(tern_smoke_jar c_examples/jni/TernSmoke.java OUTPUT_NAME tern_smoke)
  add_library(tern_jni SHARED c_examples/jni/tern_jni.c)
  target_include_directories(tern_jni PRIVATE ${_tern_jni_dirs})
  target_link_libraries(tern_jni PRIVATE tern::tern)
  target_compile_options(tern_jni PRIVATE ${TERN_WARNINGS})
  set_target_properties(tern_jni PROPERTIES BUILD_RPATH "${_tern_out_dir}")
  get_target_property(_tern_smoke_jar tern_smoke_jar JAR_FILE)
  add_test(NAME jni_smoke COMMAND ${CMAKE_COMMAND}
    "-DCMD=${Java_JAVA_EXECUTABLE}@@-Djava.library.path=$<TARGET_FILE_DIR:tern_jni>@@-cp@@${_tern_smoke_jar}@@TernSmoke@@${_tern_ref_model}@@Once upon a time@@8@@42"
    "-DREGEX=java ids:( [0-9]+)+"
    -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/run_and_match.cmake)
  set_tests_properties(jni_smoke PROPERTIES TIMEOUT 300)
elseif("$ENV{CI}" STREQUAL "true")
  message(FATAL_ERROR "CI=true and no JDK (javac + jni.h) was found (.ci/run installs one)")
else()
  message(WARNING "no JDK (javac + jni.h) found: SKIPPING the JNI smoke test")
endif()
