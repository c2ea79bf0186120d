import {
  type DescMessage,
  type DescMethod,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { MethodDescriptor } from "grpc-web";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";

/**
 * Builds a grpc-web MethodDescriptor from a protobuf-es method, with protobuf-es
 * doing the (de)serialization. This stands in for protoc-gen-grpc-web, whose
 * npm package downloads a binary at install time.
 */
export function methodDescriptor<I extends DescMessage, O extends DescMessage>(
  method: DescMethod & { input: I; output: O },
): MethodDescriptor<MessageShape<I>, MessageShape<O>> {
  // grpc-web only calls these constructors for the deprecated MethodInfo API.
  const unused = Object as unknown as new (...args: unknown[]) => never;
  return new MethodDescriptor(
    `/${method.parent.typeName}/${method.name}`,
    method.methodKind === "unary" ? "unary" : "server_streaming",
    unused,
    unused,
    (message: MessageShape<I>) => toBinary(method.input, message),
    (bytes: Uint8Array) => fromBinary(method.output, bytes),
  );
}

/** The demo service's methods as grpc-web descriptors. */
export const demoMethods = {
  whoAmI: methodDescriptor(DemoService.method.whoAmI),
  ticks: methodDescriptor(DemoService.method.ticks),
};
