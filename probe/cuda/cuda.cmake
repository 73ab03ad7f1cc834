# Host side of the CUDA probe backend. Included from probe/CMakeLists.txt when
# MOEPLAN_HAVE_CUDA, after moeplan_probe exists:
#   if(MOEPLAN_HAVE_CUDA)
#     include(${CMAKE_CURRENT_SOURCE_DIR}/cuda/cuda.cmake)
#   endif()
# Defines moeplan_probe_cuda and links it into moeplan_probe (the two static
# libraries reference each other: the backend uses the probe's types and
# statistics, make_backend() uses the backend; CMake repeats cyclic static
# libraries on the link line) with MOEPROBE_HAVE_CUDA defined.
include(CheckSymbolExists)

find_library(MOEPLAN_NCCL_LIBRARY nccl
  HINTS /usr/local/cuda/lib ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib
  PATH_SUFFIXES lib lib64)
find_path(MOEPLAN_NCCL_INCLUDE nccl.h HINTS /usr/local/cuda/include ${CUDAToolkit_INCLUDE_DIRS})
if(NOT MOEPLAN_NCCL_LIBRARY OR NOT MOEPLAN_NCCL_INCLUDE)
  message(FATAL_ERROR "moeplan: CUDA found but NCCL (libnccl.so, nccl.h) was not; install NCCL, set "
                      "MOEPLAN_NCCL_LIBRARY/MOEPLAN_NCCL_INCLUDE, or configure with -DMOEPLAN_WITH_CUDA=OFF")
endif()

# cuBLASLt grouped GEMM: absent in CUDA 13.0. Detected by symbol so a newer
# toolkit is noticed; until the backend is wired to it, the per-expert (CUDA
# graph) and padded pointer-array batched fallbacks are used.
set(CMAKE_REQUIRED_INCLUDES ${CUDAToolkit_INCLUDE_DIRS})
set(CMAKE_REQUIRED_LIBRARIES CUDA::cublasLt)
set(CMAKE_REQUIRED_QUIET ON)
check_symbol_exists(cublasLtGroupedMatrixLayoutCreate "cublasLt.h" MOEPLAN_CUBLASLT_GROUPED)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_LIBRARIES)
unset(CMAKE_REQUIRED_QUIET)
if(MOEPLAN_CUBLASLT_GROUPED)
  message(STATUS "moeplan: cuBLASLt grouped matmul symbol found (not yet used; fallbacks remain)")
else()
  message(STATUS "moeplan: cuBLASLt has no grouped matmul; expert GEMMs use the per-expert CUDA-graph fallback")
endif()

option(MOEPLAN_WITH_MPI "Bootstrap NCCL across nodes with MPI (nccl-tests style)" OFF)

add_library(moeplan_probe_cuda STATIC
  ${CMAKE_CURRENT_LIST_DIR}/src/gpu_support.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/cuda_backend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/nccl_suite.cpp)
add_library(moeplan::probe_cuda ALIAS moeplan_probe_cuda)
target_include_directories(moeplan_probe_cuda
  PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include
  PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src ${CMAKE_CURRENT_LIST_DIR}/../include ${CMAKE_CURRENT_LIST_DIR}/../../planner/include)
target_include_directories(moeplan_probe_cuda SYSTEM PRIVATE ${MOEPLAN_NCCL_INCLUDE})
string(REPLACE ";" " " _moeplan_archs "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(moeplan_probe_cuda PRIVATE MOEPROBE_CUDA_ARCHS="${_moeplan_archs}"
                           $<$<BOOL:${MOEPLAN_CUBLASLT_GROUPED}>:MOEPROBE_CUBLASLT_GROUPED>)
target_compile_options(moeplan_probe_cuda PRIVATE ${MOEPLAN_WARNINGS})
target_link_libraries(moeplan_probe_cuda
  PUBLIC moeplan::kernels_cuda CUDA::cudart CUDA::cublasLt ${MOEPLAN_NCCL_LIBRARY} ${CMAKE_DL_LIBS})
if(MOEPLAN_WITH_MPI)
  find_package(MPI COMPONENTS CXX)
  if(NOT MPI_CXX_FOUND)
    message(FATAL_ERROR "moeplan: -DMOEPLAN_WITH_MPI=ON but no MPI was found (install an MPI such as "
                        "libopenmpi-dev, or configure with -DMOEPLAN_WITH_MPI=OFF)")
  endif()
  target_link_libraries(moeplan_probe_cuda PUBLIC MPI::MPI_CXX)
  target_compile_definitions(moeplan_probe_cuda PUBLIC MOEPROBE_HAVE_MPI)
endif()

if(TARGET moeplan_probe)
  target_link_libraries(moeplan_probe_cuda PUBLIC moeplan_probe)
  target_link_libraries(moeplan_probe PUBLIC moeplan_probe_cuda)
  target_compile_definitions(moeplan_probe PUBLIC MOEPROBE_HAVE_CUDA)
endif()
