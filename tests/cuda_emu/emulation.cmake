# CUDA-on-CPU emulation build (-DBIGMODEL_CUDA=EMULATE): the CUDA backend's sources compile
# with the host C++ compiler against the toolkit's headers, rewritten by rewrite_launches.py
# (chevron launches, extern __shared__) and force-including cuda_emu.h; emu_*.cpp replace
# libcudart. For testing kernel logic on machines without a GPU; never for users.
# Sets BIGMODEL_EMU_SOURCES (to add to libbigmodel) and BIGMODEL_EMU_KERNEL_DIR.
# -fno-strict-aliasing: device code reinterprets registers (half2 as uint32 and the like) the
# way nvcc allows; the host compiler must not optimise on the strict-aliasing rule there.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(_emu_src ${PROJECT_SOURCE_DIR}/kernels/cuda)
set(BIGMODEL_EMU_KERNEL_DIR ${CMAKE_BINARY_DIR}/cuda_emu_src)
set(_emu_out ${BIGMODEL_EMU_KERNEL_DIR}/kernels/cuda)
file(GLOB _emu_inputs CONFIGURE_DEPENDS ${_emu_src}/*.cu ${_emu_src}/*.cuh ${_emu_src}/*.h ${_emu_src}/*.cpp)
set(_emu_outputs)
set(BIGMODEL_EMU_SOURCES)
foreach(f ${_emu_inputs})
  get_filename_component(name ${f} NAME)
  get_filename_component(ext ${f} LAST_EXT)
  if(ext STREQUAL ".cu")
    list(APPEND _emu_outputs ${_emu_out}/${name}.cpp)
    list(APPEND BIGMODEL_EMU_SOURCES ${_emu_out}/${name}.cpp)
  else()
    list(APPEND _emu_outputs ${_emu_out}/${name})
    if(ext STREQUAL ".cpp")
      list(APPEND BIGMODEL_EMU_SOURCES ${_emu_out}/${name})
    endif()
  endif()
endforeach()
add_custom_command(
  OUTPUT ${_emu_outputs}
  COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/cuda_emu/rewrite_launches.py ${_emu_src} ${_emu_out}
  DEPENDS ${_emu_inputs} ${PROJECT_SOURCE_DIR}/tests/cuda_emu/rewrite_launches.py
  COMMENT "cuda-emu: rewriting kernels/cuda for the host compiler")
set_source_files_properties(${BIGMODEL_EMU_SOURCES} PROPERTIES GENERATED TRUE
  COMPILE_OPTIONS "-iquote;${BIGMODEL_EMU_KERNEL_DIR};-include;${PROJECT_SOURCE_DIR}/tests/cuda_emu/cuda_emu.h;-fno-strict-aliasing;-Wno-unused-variable;-Wno-unused-function;-Wno-unknown-pragmas")
# The emulated runtime and libraries (emu_cudart, emu_hopper, emu_cublaslt, emu_cudnn*...):
# every tests/cuda_emu/emu_*.cpp but the self-test program.
file(GLOB _emu_libs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cuda_emu/emu_*.cpp)
list(REMOVE_ITEM _emu_libs ${PROJECT_SOURCE_DIR}/tests/cuda_emu/emu_selftest.cpp)
# cuDNN's conv and RNN API is emulated once tests/cuda_emu/emu_cudnn.cpp exists (its headers
# come from the toolkit's include directory); the attention baseline's frontend stays off.
option(BIGMODEL_EMU_CUDNN "Emulation build: run the cuDNN conv/RNN baselines on the emulated cuDNN" ON)
if(NOT EXISTS ${PROJECT_SOURCE_DIR}/tests/cuda_emu/emu_cudnn.cpp)
  set(BIGMODEL_EMU_CUDNN OFF)
endif()
if(NOT BIGMODEL_EMU_CUDNN)
  list(FILTER _emu_libs EXCLUDE REGEX "/emu_cudnn[^/]*\\.cpp$")
endif()
list(APPEND BIGMODEL_EMU_SOURCES ${_emu_libs})
