# qunzu_proto_library(NAME PROTOS files... [ROOT dir] [DEPS targets...])
# Generates C++ message and gRPC code for the given .proto files (relative to
# ROOT, by default protos/) into the build tree and wraps it in a static library. Python
# modules for out-of-tree clients go to ${QUNZU_PYTHON_OUT}.
set(QUNZU_PROTO_ROOT "${CMAKE_SOURCE_DIR}/protos")
set(QUNZU_PROTO_OUT "${CMAKE_BINARY_DIR}/gen")
set(QUNZU_PYTHON_OUT "${CMAKE_BINARY_DIR}/python")
file(MAKE_DIRECTORY "${QUNZU_PROTO_OUT}" "${QUNZU_PYTHON_OUT}")
get_target_property(QUNZU_PROTOBUF_INCLUDE protobuf::libprotobuf INTERFACE_INCLUDE_DIRECTORIES)

function(qunzu_proto_library name)
  cmake_parse_arguments(ARG "" "ROOT" "PROTOS;DEPS" ${ARGN})
  if(NOT ARG_ROOT)
    set(ARG_ROOT "${QUNZU_PROTO_ROOT}")
  endif()
  set(srcs)
  set(pys)
  foreach(proto ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" stem "${proto}")
    set(out_cc "${QUNZU_PROTO_OUT}/${stem}.pb.cc" "${QUNZU_PROTO_OUT}/${stem}.grpc.pb.cc")
    set(out_h "${QUNZU_PROTO_OUT}/${stem}.pb.h" "${QUNZU_PROTO_OUT}/${stem}.grpc.pb.h")
    set(out_py "${QUNZU_PYTHON_OUT}/${stem}_pb2.py" "${QUNZU_PYTHON_OUT}/${stem}_pb2_grpc.py")
    add_custom_command(
      OUTPUT ${out_cc} ${out_h} ${out_py}
      COMMAND protobuf::protoc
        --proto_path=${ARG_ROOT}
        --proto_path=${QUNZU_PROTO_ROOT}
        --proto_path=${QUNZU_PROTOBUF_INCLUDE}
        --cpp_out=${QUNZU_PROTO_OUT}
        --grpc_out=${QUNZU_PROTO_OUT}
        --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN}
        --python_out=${QUNZU_PYTHON_OUT}
        --grpcpy_out=${QUNZU_PYTHON_OUT}
        --plugin=protoc-gen-grpcpy=${GRPC_PYTHON_PLUGIN}
        ${ARG_ROOT}/${proto}
      DEPENDS ${ARG_ROOT}/${proto} protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs ${out_cc} ${out_h})
    list(APPEND pys ${out_py})
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${QUNZU_PROTO_OUT})
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf gRPC::grpc++ ${ARG_DEPS})
  add_custom_target(${name}_python ALL DEPENDS ${pys})
endfunction()
