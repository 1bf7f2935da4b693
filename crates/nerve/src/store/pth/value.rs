//! The values the state-dict pickle interpreter ([`super::pickle`]) builds: Python data, the
//! allowed globals, and the storage and tensor records of PyTorch's format.

use std::cell::RefCell;
use std::rc::Rc;

/// The globals a state dict needs; every other `module.name` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`.
    RebuildTensorV2,
    /// `torch._utils._rebuild_parameter` (an `nn.Parameter` saved as such).
    RebuildParameter,
    /// A storage class such as `torch.FloatStorage`.
    Storage(StorageDtype),
}

/// The element type of a storage, named by its PyTorch storage class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDtype {
    /// `torch.FloatStorage` (f32).
    F32,
    /// `torch.DoubleStorage` (f64).
    F64,
    /// `torch.HalfStorage` (f16).
    F16,
    /// `torch.BFloat16Storage` (bf16).
    BF16,
    /// `torch.LongStorage` (i64).
    I64,
    /// `torch.IntStorage` (i32).
    I32,
    /// `torch.ShortStorage` (i16).
    I16,
    /// `torch.CharStorage` (i8).
    I8,
    /// `torch.ByteStorage` (u8).
    U8,
    /// `torch.BoolStorage` (one byte per value).
    Bool,
}

impl StorageDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageDtype::F64 | StorageDtype::I64 => 8,
            StorageDtype::F32 | StorageDtype::I32 => 4,
            StorageDtype::F16 | StorageDtype::BF16 | StorageDtype::I16 => 2,
            StorageDtype::I8 | StorageDtype::U8 | StorageDtype::Bool => 1,
        }
    }

    /// PyTorch's name for the element type (`float32`, `bfloat16`, ...).
    pub fn name(self) -> &'static str {
        match self {
            StorageDtype::F32 => "float32",
            StorageDtype::F64 => "float64",
            StorageDtype::F16 => "float16",
            StorageDtype::BF16 => "bfloat16",
            StorageDtype::I64 => "int64",
            StorageDtype::I32 => "int32",
            StorageDtype::I16 => "int16",
            StorageDtype::I8 => "int8",
            StorageDtype::U8 => "uint8",
            StorageDtype::Bool => "bool",
        }
    }

    pub(super) fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => StorageDtype::F32,
            "DoubleStorage" => StorageDtype::F64,
            "HalfStorage" => StorageDtype::F16,
            "BFloat16Storage" => StorageDtype::BF16,
            "LongStorage" => StorageDtype::I64,
            "IntStorage" => StorageDtype::I32,
            "ShortStorage" => StorageDtype::I16,
            "CharStorage" => StorageDtype::I8,
            "ByteStorage" => StorageDtype::U8,
            "BoolStorage" => StorageDtype::Bool,
            _ => return None,
        })
    }
}

/// A storage record from a persistent id: `('storage', torch.XStorage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// Element type.
    pub dtype: StorageDtype,
    /// The archive entry `data/<key>` holding the bytes.
    pub key: String,
    /// Number of elements.
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view into a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// The storage viewed.
    pub storage: StorageRef,
    /// Offset of the first element, in elements.
    pub offset: u64,
    /// Sizes.
    pub shape: Vec<u64>,
    /// Strides, in elements.
    pub stride: Vec<u64>,
}

/// A value built by the interpreter.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(Rc<str>),
    /// Bytes.
    Bytes(Rc<[u8]>),
    /// A tuple.
    Tuple(Rc<Vec<Value>>),
    /// A list.
    List(Rc<RefCell<Vec<Value>>>),
    /// A dict or `OrderedDict`, keys in insertion order.
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// One of the allowed globals.
    Global(Global),
    /// A storage record.
    Storage(Rc<StorageRef>),
    /// A tensor.
    Tensor(Rc<TensorRef>),
}

impl Value {
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn as_uint(&self, what: &str) -> Result<u64, String> {
        match self {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            other => Err(format!(
                "{what} must be a non-negative int, found {}",
                other.type_name()
            )),
        }
    }

    pub(super) fn as_uints(&self, what: &str) -> Result<Vec<u64>, String> {
        match self {
            Value::Tuple(items) => items.iter().map(|v| v.as_uint(what)).collect(),
            other => Err(format!(
                "{what} must be a tuple of ints, found {}",
                other.type_name()
            )),
        }
    }
}
