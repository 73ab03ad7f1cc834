# Device code of the CUDA probe backend (included from kernels/CMakeLists.txt
# when MOEPLAN_HAVE_CUDA). Host launchers: src/moekernels_cuda.hpp (no kernel
# syntax, callable from g++). nvcc warnings are errors (-Werror all-warnings),
# host-side warnings follow MOEPLAN_WARNINGS.
add_library(moeplan_kernels_cuda STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/errors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/data.cu
  ${CMAKE_CURRENT_LIST_DIR}/src/moe.cu
  ${CMAKE_CURRENT_LIST_DIR}/src/gate.cu
  ${CMAKE_CURRENT_LIST_DIR}/src/attention.cu
  ${CMAKE_CURRENT_LIST_DIR}/src/mla_decode.cu
  ${CMAKE_CURRENT_LIST_DIR}/src/grouped_gemm.cu)
add_library(moeplan::kernels_cuda ALIAS moeplan_kernels_cuda)
target_include_directories(moeplan_kernels_cuda
  PUBLIC ${CMAKE_CURRENT_LIST_DIR}/src
  PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../planner/include)
target_link_libraries(moeplan_kernels_cuda PUBLIC moeplan::kernels_common CUDA::cudart)
# CMake 3.25 knows no CUDA20 dialect flags for nvcc; the .cu files are C++17.
set_target_properties(moeplan_kernels_cuda PROPERTIES
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  POSITION_INDEPENDENT_CODE ON
  CUDA_RUNTIME_LIBRARY Shared)
target_compile_options(moeplan_kernels_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Wall,-Wextra$<$<BOOL:${MOEPLAN_WERROR}>:,-Werror> -lineinfo>
  $<$<COMPILE_LANGUAGE:CXX>:${MOEPLAN_WARNINGS}>)
