// Which changes between two versions of a schema break existing clients.
//
// GraphQL Inspector classifies every change; a breaking one is allowed only
// when the element was already @deprecated in the old version (fields, input
// fields, enum values by Inspector's own rule; arguments by ours, since
// GraphQL allows deprecating them too and Inspector does not look).
import { buildSchema, isInputObjectType, isInterfaceType, isObjectType } from 'graphql';
import { ChangeType, CriticalityLevel, DiffRule, diff } from '@graphql-inspector/core';

function deprecatedArgument(oldSchema, change) {
  if (change.type !== ChangeType.FieldArgumentRemoved || !change.path) return false;
  const [typeName, fieldName, argName] = change.path.split('.');
  const type = oldSchema.getType(typeName);
  if (!isObjectType(type) && !isInterfaceType(type) && !isInputObjectType(type)) return false;
  const arg = type.getFields()[fieldName]?.args?.find((a) => a.name === argName);
  return arg?.deprecationReason != null;
}

/** The breaking changes from `oldSdl` to `newSdl`, as `{ path, message }`. */
export async function breakingChanges(oldSdl, newSdl) {
  const oldSchema = buildSchema(oldSdl);
  const newSchema = buildSchema(newSdl);
  const changes = await diff(oldSchema, newSchema, [DiffRule.suppressRemovalOfDeprecatedField]);
  return changes
    .filter((c) => c.criticality.level === CriticalityLevel.Breaking)
    .filter((c) => !deprecatedArgument(oldSchema, c))
    .map((c) => ({ path: c.path ?? '', message: c.message }));
}
