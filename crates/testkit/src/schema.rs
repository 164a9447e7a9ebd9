//! A small validator for GraphQL operations against Railway's introspection
//! schema: field existence, argument names and types, required arguments,
//! variable types, leaf/object selections, and the input object fields of
//! the variables actually sent.

use std::collections::HashMap;

use graphql_parser::query::{
    Definition, OperationDefinition, Selection, SelectionSet, Type, Value as GqlValue,
};
use serde_json::Value;

pub struct Schema {
    types: HashMap<String, Value>,
    query: String,
    mutation: String,
}

/// An introspection type reference rendered as GraphQL source (`[String!]!`).
fn render(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", render(&t["ofType"])),
        Some("LIST") => format!("[{}]", render(&t["ofType"])),
        _ => t["name"].as_str().unwrap_or("?").to_string(),
    }
}

fn render_ast(t: &Type<'_, String>) -> String {
    match t {
        Type::NamedType(n) => n.clone(),
        Type::ListType(inner) => format!("[{}]", render_ast(inner)),
        Type::NonNullType(inner) => format!("{}!", render_ast(inner)),
    }
}

fn named(t: &Value) -> &str {
    match t["kind"].as_str() {
        Some("NON_NULL" | "LIST") => named(&t["ofType"]),
        _ => t["name"].as_str().unwrap_or("?"),
    }
}

/// Where Railway's published schema sits beside the workspace.
pub fn railway_schema_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/railway/schema.json")
}

/// Railway's published schema, loaded once; `None` when the file is absent.
pub fn railway() -> Option<&'static Schema> {
    static SCHEMA: std::sync::OnceLock<Option<Schema>> = std::sync::OnceLock::new();
    SCHEMA
        .get_or_init(|| Schema::load(&railway_schema_path()))
        .as_ref()
}

impl Schema {
    /// One request as sent: the operation document and every variable in it.
    pub fn check_request(&self, query: &str, variables: &Value) -> Result<(), Vec<String>> {
        let var_types = self.check_operation(query)?;
        let mut errors = Vec::new();
        if let Some(vars) = variables.as_object() {
            for (name, value) in vars {
                match var_types.get(name) {
                    Some(ty) => self.check_value(ty, value, &format!("${name}"), &mut errors),
                    None => errors.push(format!("${name} is sent but not declared")),
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub fn load(path: &std::path::Path) -> Option<Self> {
        let raw = std::fs::read_to_string(path).ok()?;
        let v: Value = serde_json::from_str(&raw).ok()?;
        let s = &v["data"]["__schema"];
        let types = s["types"]
            .as_array()?
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap_or_default().to_string(),
                    t.clone(),
                )
            })
            .collect();
        Some(Self {
            types,
            query: s["queryType"]["name"].as_str()?.to_string(),
            mutation: s["mutationType"]["name"].as_str()?.to_string(),
        })
    }

    fn kind(&self, name: &str) -> &str {
        self.types
            .get(name)
            .and_then(|t| t["kind"].as_str())
            .unwrap_or("")
    }

    /// Validates one operation document; returns its variable types.
    pub fn check_operation(&self, src: &str) -> Result<HashMap<String, String>, Vec<String>> {
        let doc =
            graphql_parser::parse_query::<String>(src).map_err(|e| vec![format!("parse: {e}")])?;
        let mut errors = Vec::new();
        let mut variables = HashMap::new();
        for def in &doc.definitions {
            let (root, var_defs, selection) = match def {
                Definition::Operation(OperationDefinition::Query(q)) => {
                    (&self.query, &q.variable_definitions, &q.selection_set)
                }
                Definition::Operation(OperationDefinition::Mutation(m)) => {
                    (&self.mutation, &m.variable_definitions, &m.selection_set)
                }
                _ => {
                    errors.push("only named queries and mutations are sent".into());
                    continue;
                }
            };
            for v in var_defs {
                let ty = render_ast(&v.var_type);
                let base = ty.trim_matches(|c| c == '[' || c == ']' || c == '!');
                if !matches!(self.kind(base), "SCALAR" | "ENUM" | "INPUT_OBJECT") {
                    errors.push(format!(
                        "variable ${} has type {ty}, not an input type of the schema",
                        v.name
                    ));
                }
                variables.insert(v.name.clone(), ty);
            }
            self.check_selection(root, selection, &variables, &mut errors);
        }
        if errors.is_empty() {
            Ok(variables)
        } else {
            Err(errors)
        }
    }

    fn check_selection(
        &self,
        parent: &str,
        set: &SelectionSet<'_, String>,
        vars: &HashMap<String, String>,
        errors: &mut Vec<String>,
    ) {
        for sel in &set.items {
            let Selection::Field(f) = sel else {
                errors.push(format!("{parent}: fragments are not used"));
                continue;
            };
            let Some(def) = self
                .types
                .get(parent)
                .and_then(|t| t["fields"].as_array())
                .and_then(|fs| fs.iter().find(|x| x["name"] == f.name.as_str()))
            else {
                errors.push(format!("{parent} has no field {}", f.name));
                continue;
            };
            let args = def["args"].as_array().cloned().unwrap_or_default();
            for (name, value) in &f.arguments {
                let Some(arg) = args.iter().find(|a| a["name"] == name.as_str()) else {
                    errors.push(format!("{parent}.{} has no argument {name}", f.name));
                    continue;
                };
                let expected = render(&arg["type"]);
                match value {
                    GqlValue::Variable(v) => match vars.get(v) {
                        Some(actual)
                            if *actual == expected || format!("{expected}!") == *actual => {}
                        Some(actual) => errors.push(format!(
                            "{parent}.{}({name}:) takes {expected}, variable ${v} is {actual}",
                            f.name
                        )),
                        None => errors.push(format!("variable ${v} is not declared")),
                    },
                    _ => errors.push(format!(
                        "{parent}.{}({name}:) literal arguments are not used; pass a variable",
                        f.name
                    )),
                }
            }
            for a in &args {
                let required = a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null();
                if required
                    && !f
                        .arguments
                        .iter()
                        .any(|(n, _)| n == a["name"].as_str().unwrap_or_default())
                {
                    errors.push(format!("{parent}.{} needs argument {}", f.name, a["name"]));
                }
            }
            let child = named(&def["type"]);
            match (self.kind(child), f.selection_set.items.is_empty()) {
                ("OBJECT" | "INTERFACE" | "UNION", true) => errors.push(format!(
                    "{parent}.{} returns {child}: select its fields",
                    f.name
                )),
                ("OBJECT" | "INTERFACE" | "UNION", false) => {
                    self.check_selection(child, &f.selection_set, vars, errors)
                }
                (_, false) => errors.push(format!(
                    "{parent}.{} returns {child}, which has no fields",
                    f.name
                )),
                (_, true) => {}
            }
        }
    }

    /// Checks a JSON value against a type given as GraphQL source.
    pub fn check_value(&self, ty: &str, value: &Value, path: &str, errors: &mut Vec<String>) {
        if let Some(inner) = ty.strip_suffix('!') {
            if value.is_null() {
                errors.push(format!("{path}: {ty} must not be null"));
                return;
            }
            return self.check_value(inner, value, path, errors);
        }
        if value.is_null() {
            return;
        }
        if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            match value.as_array() {
                Some(items) => items
                    .iter()
                    .enumerate()
                    .for_each(|(i, v)| self.check_value(inner, v, &format!("{path}[{i}]"), errors)),
                None => errors.push(format!("{path}: {ty} must be a list")),
            }
            return;
        }
        let t = &self.types[ty];
        match t["kind"].as_str() {
            Some("INPUT_OBJECT") => {
                let Some(obj) = value.as_object() else {
                    errors.push(format!("{path}: {ty} must be an object"));
                    return;
                };
                let fields = t["inputFields"].as_array().cloned().unwrap_or_default();
                for (k, v) in obj {
                    match fields.iter().find(|f| f["name"] == k.as_str()) {
                        Some(f) => {
                            self.check_value(&render(&f["type"]), v, &format!("{path}.{k}"), errors)
                        }
                        None => errors.push(format!("{path}: {ty} has no field {k}")),
                    }
                }
                for f in &fields {
                    if f["type"]["kind"] == "NON_NULL"
                        && f["defaultValue"].is_null()
                        && !obj.contains_key(f["name"].as_str().unwrap_or_default())
                    {
                        errors.push(format!("{path}: {ty}.{} is required", f["name"]));
                    }
                }
            }
            Some("ENUM") => {
                let ok = t["enumValues"]
                    .as_array()
                    .is_some_and(|vs| vs.iter().any(|e| e["name"] == *value));
                if !ok {
                    errors.push(format!("{path}: {value} is not a {ty}"));
                }
            }
            _ => {
                let ok = match ty {
                    "String" | "ID" => value.is_string(),
                    "Int" => value.is_i64() || value.is_u64(),
                    "Float" => value.is_number(),
                    "Boolean" => value.is_boolean(),
                    _ => true, // custom scalars (JSON, EnvironmentVariables, DateTime)
                };
                if !ok {
                    errors.push(format!("{path}: {value} is not a {ty}"));
                }
            }
        }
    }
}
