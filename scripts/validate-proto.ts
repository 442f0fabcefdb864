/**
 * Derives `proto/vendor/buf/validate/validate.proto` from the file descriptor embedded in the
 * installed `@bufbuild/protovalidate` package, so that buf can compile our `(buf.validate.*)`
 * annotations without the Buf Schema Registry. The npm package ships only generated code; its
 * `validate_pb.js` carries the compiled `FileDescriptorProto`, which this script prints back as
 * proto source: messages, fields, oneofs, enums, reserved and extension ranges, and the
 * `extend google.protobuf.*Options` declarations. Options on validate.proto's own fields (the
 * CEL definitions of the standard rules) are left out: the validator at run time uses the
 * package's own descriptor, never this file, and buf needs only the shapes to encode our rules.
 *
 * Run by `npm run gen`; `tests/proto.test.ts` checks that the committed file is current.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isFieldSet } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FieldDescriptorProtoSchema, FieldOptionsSchema } from '@bufbuild/protobuf/wkt';
import type { DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { file_buf_validate_validate } from '@bufbuild/protovalidate/gen/buf/validate/validate_pb.js';

/** Where the derived file lives, relative to the repository root. */
export const VALIDATE_PROTO_PATH = 'proto/vendor/buf/validate/validate.proto';

/** The largest field number (extension ranges ending here are written `to max`). */
const MAX_FIELD_NUMBER = 536_870_911;

const SCALARS: Readonly<Partial<Record<FieldDescriptorProto_Type, string>>> = {
  [FieldDescriptorProto_Type.DOUBLE]: 'double',
  [FieldDescriptorProto_Type.FLOAT]: 'float',
  [FieldDescriptorProto_Type.INT64]: 'int64',
  [FieldDescriptorProto_Type.UINT64]: 'uint64',
  [FieldDescriptorProto_Type.INT32]: 'int32',
  [FieldDescriptorProto_Type.FIXED64]: 'fixed64',
  [FieldDescriptorProto_Type.FIXED32]: 'fixed32',
  [FieldDescriptorProto_Type.BOOL]: 'bool',
  [FieldDescriptorProto_Type.STRING]: 'string',
  [FieldDescriptorProto_Type.BYTES]: 'bytes',
  [FieldDescriptorProto_Type.UINT32]: 'uint32',
  [FieldDescriptorProto_Type.SFIXED32]: 'sfixed32',
  [FieldDescriptorProto_Type.SFIXED64]: 'sfixed64',
  [FieldDescriptorProto_Type.SINT32]: 'sint32',
  [FieldDescriptorProto_Type.SINT64]: 'sint64',
};

/** The version of the installed package, for the file's provenance line. */
export function protovalidateVersion(): string {
  const require = createRequire(import.meta.url);
  // The package exports no package.json; find it beside the entry point it does export.
  let dir = path.dirname(require.resolve('@bufbuild/protovalidate'));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    try {
      const manifest = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown; version?: unknown };
      if (manifest.name === '@bufbuild/protovalidate' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // not there; look one level up
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the package.json of @bufbuild/protovalidate');
    dir = parent;
  }
}

/** The proto source for `file`, as buf needs it to compile annotations that use it. */
export function renderValidateProto(file: FileDescriptorProto = file_buf_validate_validate.proto, version = protovalidateVersion()): string {
  const syntax = file.syntax === '' ? 'proto2' : file.syntax;
  if (syntax !== 'proto2' && syntax !== 'proto3') throw new Error(`${file.name}: syntax "${file.syntax}" is not supported (editions are not)`);
  if (file.publicDependency.length > 0 || file.weakDependency.length > 0) throw new Error(`${file.name}: public and weak imports are not supported`);
  const out: string[] = [
    `// ${file.name}, derived from the descriptor embedded in @bufbuild/protovalidate ${version}`,
    '// (dist/esm/gen/buf/validate/validate_pb.js) by scripts/validate-proto.ts. DO NOT EDIT: run `npm run gen`.',
    '//',
    '// The source it describes is Copyright Buf Technologies, Inc., licensed under the',
    '// Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0). Only the shapes are',
    "// kept (messages, fields, oneofs, enums, ranges, extensions); the rule definitions on its own",
    '// fields, its comments and its file options are left out. Corridor validates at run time with',
    "// the package's own descriptor; this file exists only so that buf can compile our annotations.",
    '',
    `syntax = "${syntax}";`,
    '',
    `package ${file.package};`,
    '',
    ...file.dependency.map((dependency) => `import "${dependency}";`),
  ];
  const context: Context = { file: file.name, proto3: syntax === 'proto3' };
  if (file.extension.length > 0) out.push('', ...renderExtensions(file.extension, context, ''));
  for (const message of file.messageType) out.push('', ...renderMessage(message, context, ''));
  for (const enumType of file.enumType) out.push('', ...renderEnum(enumType, ''));
  return `${out.join('\n')}\n`;
}

interface Context {
  readonly file: string;
  readonly proto3: boolean;
}

function renderMessage(message: DescriptorProto, context: Context, indent: string): string[] {
  const inner = `${indent}  `;
  const where = `${context.file}: message ${message.name}`;
  if (message.options?.mapEntry === true) throw new Error(`${where}: map fields are not supported`);
  const body: string[] = [];
  const oneofsDone = new Set<number>();
  for (const field of message.field) {
    const oneof = oneofOf(field);
    if (oneof === undefined) {
      body.push(`${inner}${renderField(field, context, { inOneof: false, where })}`);
      continue;
    }
    if (oneofsDone.has(oneof)) continue;
    oneofsDone.add(oneof);
    const decl = message.oneofDecl[oneof];
    if (decl === undefined) throw new Error(`${where}: field ${field.name} names oneof #${oneof}, which is not declared`);
    body.push(`${inner}oneof ${decl.name} {`);
    for (const member of message.field.filter((f) => oneofOf(f) === oneof)) {
      body.push(`${inner}  ${renderField(member, context, { inOneof: true, where })}`);
    }
    body.push(`${inner}}`);
  }
  for (const nested of message.nestedType) body.push(...renderMessage(nested, context, inner));
  for (const nested of message.enumType) body.push(...renderEnum(nested, inner));
  if (message.extension.length > 0) body.push(...renderExtensions(message.extension, context, inner));
  for (const range of message.extensionRange) {
    body.push(`${inner}extensions ${range.start} to ${range.end - 1 >= MAX_FIELD_NUMBER ? 'max' : range.end - 1};`);
  }
  if (message.reservedRange.length > 0) {
    // DescriptorProto.ReservedRange ends are exclusive.
    body.push(`${inner}reserved ${message.reservedRange.map((r) => (r.end - 1 === r.start ? `${r.start}` : `${r.start} to ${r.end - 1}`)).join(', ')};`);
  }
  if (message.reservedName.length > 0) body.push(`${inner}reserved ${message.reservedName.map((name) => JSON.stringify(name)).join(', ')};`);
  return [`${indent}message ${message.name} {`, ...body, `${indent}}`];
}

function renderEnum(enumType: EnumDescriptorProto, indent: string): string[] {
  const inner = `${indent}  `;
  const body = enumType.value.map((value) => `${inner}${value.name} = ${value.number};`);
  if (enumType.options?.allowAlias === true) body.unshift(`${inner}option allow_alias = true;`);
  if (enumType.reservedRange.length > 0) {
    // EnumDescriptorProto.EnumReservedRange ends are inclusive.
    body.push(`${inner}reserved ${enumType.reservedRange.map((r) => (r.end === r.start ? `${r.start}` : `${r.start} to ${r.end}`)).join(', ')};`);
  }
  if (enumType.reservedName.length > 0) body.push(`${inner}reserved ${enumType.reservedName.map((name) => JSON.stringify(name)).join(', ')};`);
  return [`${indent}enum ${enumType.name} {`, ...body, `${indent}}`];
}

function renderExtensions(extensions: readonly FieldDescriptorProto[], context: Context, indent: string): string[] {
  const out: string[] = [];
  const byExtendee = new Map<string, FieldDescriptorProto[]>();
  for (const extension of extensions) byExtendee.set(extension.extendee, [...(byExtendee.get(extension.extendee) ?? []), extension]);
  for (const [extendee, fields] of byExtendee) {
    out.push(`${indent}extend ${extendee} {`);
    for (const field of fields) out.push(`${indent}  ${renderField(field, context, { inOneof: false, where: `${context.file}: extend ${extendee}` })}`);
    out.push(`${indent}}`);
  }
  return out;
}

function oneofOf(field: FieldDescriptorProto): number | undefined {
  // A proto3 `optional` field sits in a synthetic oneof, written as the label instead.
  if (field.proto3Optional) return undefined;
  return isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex) ? field.oneofIndex : undefined;
}

function renderField(field: FieldDescriptorProto, context: Context, position: { readonly inOneof: boolean; readonly where: string }): string {
  const where = `${position.where}: field ${field.name}`;
  if (isFieldSet(field, FieldDescriptorProtoSchema.field.defaultValue)) throw new Error(`${where}: default values are not supported`);
  let type: string;
  if (field.type === FieldDescriptorProto_Type.MESSAGE || field.type === FieldDescriptorProto_Type.ENUM) {
    type = field.typeName;
  } else {
    const scalar = SCALARS[field.type];
    if (scalar === undefined) throw new Error(`${where}: field type ${FieldDescriptorProto_Type[field.type]} is not supported`);
    type = scalar;
  }
  let label = '';
  if (!position.inOneof) {
    if (field.label === FieldDescriptorProto_Label.REPEATED) label = 'repeated ';
    else if (field.label === FieldDescriptorProto_Label.REQUIRED) label = 'required ';
    else if (!context.proto3 || field.proto3Optional) label = 'optional ';
  }
  // Only options that change how values are encoded or read are kept.
  const options: string[] = [];
  const fieldOptions = field.options;
  if (fieldOptions !== undefined && isFieldSet(fieldOptions, FieldOptionsSchema.field.packed)) options.push(`packed = ${String(fieldOptions.packed)}`);
  return `${label}${type} ${field.name} = ${field.number}${options.length > 0 ? ` [${options.join(', ')}]` : ''};`;
}

/** Writes the file under the current directory (`npm run` starts scripts at the repository root). */
function main(): void {
  const target = path.resolve(VALIDATE_PROTO_PATH);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, renderValidateProto());
  console.log(`wrote ${VALIDATE_PROTO_PATH}`);
}

if (process.argv[1] !== undefined && new URL(import.meta.url).pathname === path.resolve(process.argv[1])) main();
