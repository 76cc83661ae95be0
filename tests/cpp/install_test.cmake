# ctest script: installs the build into a fresh prefix, then configures, builds and runs
# tests/cpp/consumer against it with find_package(bigmodel): the consumer program, then the C++
# CNN example (examples/cpp/train_cnn.cpp) built out of tree, trained briefly on Fashion-MNIST
# (a short run that must clearly learn; skipped when the dataset is not installed).
# Variables: BUILD_DIR, SOURCE_DIR.
set(work "${BUILD_DIR}/install-test")
file(REMOVE_RECURSE "${work}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${work}/prefix"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/cpp/consumer" -B "${work}/build"
                        -DCMAKE_PREFIX_PATH=${work}/prefix -DCMAKE_BUILD_TYPE=Release
                        -DBIGMODEL_EXAMPLES_DIR=${SOURCE_DIR}/examples/cpp
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${work}/build" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the consumer failed:\n${out}\n${err}")
endif()
execute_process(COMMAND "${work}/build/consumer" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the consumer failed (${rc})")
endif()
set(fmnist /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz)
if(NOT EXISTS ${fmnist})
  message("skipped the out-of-tree CNN run: ${fmnist} is missing (apt-get install dataset-fashion-mnist)")
  return()
endif()
execute_process(COMMAND "${work}/build/train_cnn" --epochs 1 --limit 4000 --min-accuracy 0.70
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the out-of-tree train_cnn failed (${rc})")
endif()
