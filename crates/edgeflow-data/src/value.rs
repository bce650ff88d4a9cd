//! Dynamically typed rows for tabular sources (CSV, JSON Lines, Parquet,
//! `tf.train.Example`) whose schema is discovered at run time.

use std::fmt;
use std::sync::Arc;

/// One cell.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// Missing.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Str(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list of values.
    List(Vec<Value>),
}

impl Value {
    /// The value as `f64` if it is numeric or boolean (`Int` converted exactly up to
    /// 2^53, rounded beyond), else `None`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// The type of this value.
    pub fn column_type(&self) -> ColumnType {
        match self {
            Value::Null => ColumnType::Null,
            Value::Bool(_) => ColumnType::Bool,
            Value::Int(_) => ColumnType::Int,
            Value::Float(_) => ColumnType::Float,
            Value::Str(_) => ColumnType::Str,
            Value::Bytes(_) => ColumnType::Bytes,
            Value::List(_) => ColumnType::List,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().take(8).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                if l.len() > 8 {
                    write!(f, ", … ({} items)", l.len())?;
                }
                f.write_str("]")
            }
        }
    }
}

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ColumnType {
    /// Only missing values seen.
    Null,
    /// Booleans.
    Bool,
    /// Integers.
    Int,
    /// Floating-point numbers (integers widen to this).
    Float,
    /// Text.
    Str,
    /// Raw bytes.
    Bytes,
    /// Lists.
    List,
}

impl ColumnType {
    /// The narrowest type that holds values of both `self` and `other`: `Null` joins
    /// anything, `Int` and `Float` join to `Float`, anything else that differs joins to
    /// `Str`.
    pub fn join(self, other: ColumnType) -> ColumnType {
        use ColumnType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Null, b) => b,
            (a, Null) => a,
            (Int, Float) | (Float, Int) => Float,
            _ => Str,
        }
    }

    /// Whether the type is numeric (`Int`, `Float`, `Bool`).
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Int | ColumnType::Float | ColumnType::Bool)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::Null => "null",
            ColumnType::Bool => "bool",
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Str => "string",
            ColumnType::Bytes => "bytes",
            ColumnType::List => "list",
        })
    }
}

/// A named, typed column.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: ColumnType,
    /// Whether missing values were seen (or are allowed).
    pub nullable: bool,
}

/// The columns of a table.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Schema {
    /// The columns, in file order.
    pub columns: Vec<Column>,
}

impl Schema {
    /// The index of the column named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column names.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }
}

/// One row of a table: one value per column of its schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The schema shared by every row of the table.
    pub schema: Arc<Schema>,
    /// One value per column, in schema order.
    pub values: Vec<Value>,
}

impl Row {
    /// The value of the column named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(self.schema.index_of(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_join_to_the_narrowest_common_type() {
        use ColumnType::*;
        assert_eq!(Int.join(Float), Float);
        assert_eq!(Null.join(Int), Int);
        assert_eq!(Bool.join(Int), Str);
        assert_eq!(Str.join(Str), Str);
    }

    #[test]
    fn values_display_briefly() {
        let l = Value::List((0..10).map(Value::Int).collect());
        assert_eq!(l.to_string(), "[0, 1, 2, 3, 4, 5, 6, 7, … (10 items)]");
        assert_eq!(Value::Bytes(vec![1, 2]).to_string(), "<2 bytes>");
        assert_eq!(Value::Int(3).as_f64(), Some(3.0));
        assert_eq!(Value::Str("x".into()).as_f64(), None);
    }
}
