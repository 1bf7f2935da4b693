//! A pickle interpreter that only builds data: the opcodes a PyTorch state dict uses, and of the
//! globals only those [`Global`] names. Anything else is refused by name; nothing is executed.
//!
//! Containers are shared (`Rc`) because pickle's memo refers to the same object that later
//! opcodes (`SETITEMS`, `APPENDS`, `BUILD`) fill in, and so that a memo fetched many times costs
//! nothing (no "billion laughs" by copying).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::value::{Global, StorageDtype, StorageRef, TensorRef, Value};

/// Interpreter limits: a state dict of any size stays far below them.
const MAX_STACK: usize = 1 << 20;
const MAX_DIMS: usize = 64;

/// Runs the pickle program `bytes` and hands the value it builds to `read`.
///
/// The value lives only during `read`: a pickle may build cycles (a list that holds itself)
/// and nestings a million deep, so afterwards every container is emptied and released one at
/// a time, which frees cycles and never recurses deeply.
pub fn unpickle_with<T>(bytes: &[u8], read: impl FnOnce(&Value) -> T) -> Result<T, String> {
    let mut machine = Machine::default();
    let root = machine.run(bytes)?;
    let out = read(&root);
    // Released before the machine, whose registry still holds every container.
    drop(root);
    Ok(out)
}

#[derive(Default)]
struct Machine {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Every tuple, list and dict built, in order of creation (see [`Machine::drop`]).
    containers: Vec<Value>,
}

impl Drop for Machine {
    /// Lists and dicts are emptied first (breaking cycles); then containers are released
    /// newest first, so whatever a tuple holds is still held by an older entry and every drop
    /// is shallow.
    fn drop(&mut self) {
        self.stack.clear();
        self.memo.clear();
        for c in &self.containers {
            match c {
                Value::List(items) => items.borrow_mut().clear(),
                Value::Dict(items) => items.borrow_mut().clear(),
                _ => {}
            }
        }
        while self.containers.pop().is_some() {}
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end =
            end.ok_or_else(|| format!("pickle ends inside an argument at byte {}", self.pos))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("pickle ends inside a GLOBAL name")?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| "GLOBAL name is not UTF-8".to_string())
    }
    fn text(&mut self, n: usize) -> Result<Rc<str>, String> {
        let raw = self.take(n)?;
        std::str::from_utf8(raw)
            .map(Rc::from)
            .map_err(|_| format!("string at byte {} is not UTF-8", self.pos - n))
    }
}

fn global(module: &str, name: &str) -> Result<Global, String> {
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", class) if StorageDtype::from_class(class).is_some() => Ok(Global::Storage(
            StorageDtype::from_class(class).unwrap_or(StorageDtype::F32),
        )),
        _ => Err(format!(
            "refusing pickle global '{module}.{name}': a state dict needs only \
             collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and \
             torch storage classes (this file may run code when PyTorch loads it)"
        )),
    }
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        b'c' => "GLOBAL",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        0x82..=0x84 => "EXT",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x97 => "BYTEARRAY8",
        0x98 => "NEXT_BUFFER",
        0x99 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

impl Machine {
    fn push(&mut self, v: Value) -> Result<(), String> {
        if self.stack.len() >= MAX_STACK {
            return Err("pickle stack grows beyond 1M entries".into());
        }
        if matches!(v, Value::Tuple(_) | Value::List(_) | Value::Dict(_)) {
            self.containers.push(v.clone());
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("pickle pops from an empty stack".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "pickle pops from an empty stack".into())
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "pickle reads an empty stack".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or("pickle closes a MARK it never opened")?;
        if mark > self.stack.len() {
            return Err("pickle MARK is above the stack".into());
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&self, key: u32) -> Result<Value, String> {
        self.memo
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("pickle reads memo entry {key}, which was never stored"))
    }

    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or("pickle memoizes an empty stack")?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn run(&mut self, bytes: &[u8]) -> Result<Value, String> {
        let mut r = Reader { bytes, pos: 0 };
        loop {
            let at = r.pos;
            let op = r.u8().map_err(|_| "pickle ends without STOP".to_string())?;
            match op {
                0x80 => {
                    let proto = r.u8()?;
                    if proto > 5 {
                        return Err(format!("pickle protocol {proto} is not supported (0-5)"));
                    }
                }
                0x95 => {
                    r.u64()?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => drop(self.pop()?),
                b'1' => drop(self.pop_mark()?),
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v)?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = r.u32()? as i32;
                    self.push(Value::Int(v as i64))?
                }
                b'K' => {
                    let v = r.u8()?;
                    self.push(Value::Int(v as i64))?
                }
                b'M' => {
                    let v = r.u16()?;
                    self.push(Value::Int(v as i64))?
                }
                0x8a => {
                    let n = r.u8()? as usize;
                    let v = long(r.take(n)?)?;
                    self.push(Value::Int(v))?
                }
                0x8b => {
                    let n = r.u32()? as usize;
                    let v = long(r.take(n)?)?;
                    self.push(Value::Int(v))?
                }
                b'G' => {
                    let v = f64::from_be_bytes(r.take(8)?.try_into().unwrap_or_default());
                    self.push(Value::Float(v))?
                }
                b'X' => {
                    let n = r.u32()? as usize;
                    let s = r.text(n)?;
                    self.push(Value::Str(s))?
                }
                0x8c => {
                    let n = r.u8()? as usize;
                    let s = r.text(n)?;
                    self.push(Value::Str(s))?
                }
                0x8d => {
                    let n = usize::try_from(r.u64()?).map_err(|_| "string too long")?;
                    let s = r.text(n)?;
                    self.push(Value::Str(s))?
                }
                // SHORT_BINSTRING / BINSTRING: Python 2 `str`, read as text when it is UTF-8.
                b'U' | b'T' => {
                    let n = if op == b'U' {
                        r.u8()? as usize
                    } else {
                        r.u32()? as usize
                    };
                    let s = r.text(n)?;
                    self.push(Value::Str(s))?
                }
                b'C' | b'B' | 0x8e => {
                    let n = match op {
                        b'C' => r.u8()? as usize,
                        b'B' => r.u32()? as usize,
                        _ => usize::try_from(r.u64()?).map_err(|_| "bytes too long")?,
                    };
                    let b = r.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)))?
                }
                b')' => self.push(Value::Tuple(Rc::new(Vec::new())))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(Rc::new(items)))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(Rc::new(items)))?
                }
                b']' => self.push(Value::List(Rc::new(RefCell::new(Vec::new()))))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(Rc::new(RefCell::new(items))))?
                }
                b'}' => self.push(Value::Dict(Rc::new(RefCell::new(Vec::new()))))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = Rc::new(RefCell::new(pairs(items)?));
                    self.push(Value::Dict(dict))?
                }
                b'a' => {
                    let v = self.pop()?;
                    append(self.top()?, vec![v])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    append(self.top()?, items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    set_items(self.top()?, vec![(k, v)])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    set_items(self.top()?, pairs(items)?)?
                }
                b'q' => {
                    let k = r.u8()? as u32;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = r.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = u32::try_from(self.memo.len()).map_err(|_| "memo overflow")?;
                    self.memo_put(k)?
                }
                b'h' => {
                    let v = self.memo_get(r.u8()? as u32)?;
                    self.push(v)?
                }
                b'j' => {
                    let v = self.memo_get(r.u32()?)?;
                    self.push(v)?
                }
                b'c' => {
                    let module = r.line()?;
                    let name = r.line()?;
                    self.push(Value::Global(global(module, name)?))?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module.as_str(), name.as_str()) {
                        (Some(m), Some(n)) => self.push(Value::Global(global(m, n)?))?,
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(persistent(&pid)?)?
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.push(reduce(&func, &args)?)?
                }
                b'b' => {
                    // BUILD: only an OrderedDict's `__dict__` (`_metadata`) reaches here in a
                    // state dict; attributes are not part of the tensors and are dropped.
                    let _state = self.pop()?;
                    match self.top()? {
                        Value::Dict(_) => {}
                        other => {
                            return Err(format!("BUILD on a {}, not a dict", other.type_name()))
                        }
                    }
                }
                other => {
                    return Err(format!(
                    "pickle opcode {} (0x{other:02x}) at byte {at} is not allowed in a state dict",
                    opcode_name(other)
                ))
                }
            }
        }
    }
}

fn long(bytes: &[u8]) -> Result<i64, String> {
    if bytes.len() > 8 {
        return Err(format!(
            "integer of {} bytes does not fit in 64 bits",
            bytes.len()
        ));
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buf = [if negative { 0xff } else { 0 }; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(buf))
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("pickle sets a dict item without a value".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn append(target: &mut Value, items: Vec<Value>) -> Result<(), String> {
    match target {
        Value::List(list) => {
            list.borrow_mut().extend(items);
            Ok(())
        }
        other => Err(format!("APPEND on a {}, not a list", other.type_name())),
    }
}

fn set_items(target: &mut Value, items: Vec<(Value, Value)>) -> Result<(), String> {
    match target {
        Value::Dict(dict) => {
            let mut dict = dict.borrow_mut();
            for (k, v) in items {
                // Python keeps a key's first position and its last value.
                let existing = match k.as_str() {
                    Some(key) => dict.iter().position(|(old, _)| old.as_str() == Some(key)),
                    None => None,
                };
                match existing {
                    Some(i) => dict[i].1 = v,
                    None => dict.push((k, v)),
                }
            }
            Ok(())
        }
        other => Err(format!("SETITEM on a {}, not a dict", other.type_name())),
    }
}

/// `('storage', torch.XStorage, key, location, numel)`: the zip format's storage record.
fn persistent(pid: &Value) -> Result<Value, String> {
    let Value::Tuple(items) = pid else {
        return Err(format!(
            "persistent id is a {}, not a tuple",
            pid.type_name()
        ));
    };
    match items.as_slice() {
        [kind, Value::Global(Global::Storage(dtype)), key, _location, numel]
            if kind.as_str() == Some("storage") =>
        {
            let key = key.as_str().ok_or("storage key is not a string")?;
            Ok(Value::Storage(Rc::new(StorageRef {
                dtype: *dtype,
                key: key.to_string(),
                numel: numel.as_uint("storage size")?,
            })))
        }
        _ => Err(
            "persistent id is not a ('storage', torch.XStorage, key, location, numel) record"
                .into(),
        ),
    }
}

fn reduce(func: &Value, args: &Value) -> Result<Value, String> {
    let Value::Tuple(args) = args else {
        return Err(format!(
            "REDUCE arguments are a {}, not a tuple",
            args.type_name()
        ));
    };
    match func {
        Value::Global(Global::OrderedDict) => {
            let mut dict = Value::Dict(Rc::new(RefCell::new(Vec::new())));
            match args.as_slice() {
                [] => {}
                [Value::List(items)] => {
                    let mut entries = Vec::new();
                    for item in items.borrow().iter() {
                        match item {
                            Value::Tuple(kv) if kv.len() == 2 => {
                                entries.push((kv[0].clone(), kv[1].clone()))
                            }
                            _ => return Err("OrderedDict items must be (key, value) pairs".into()),
                        }
                    }
                    set_items(&mut dict, entries)?;
                }
                _ => return Err("OrderedDict takes no arguments or a list of pairs".into()),
            }
            Ok(dict)
        }
        Value::Global(Global::RebuildTensorV2) => {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            let (storage, offset, size, stride) = match args.as_slice() {
                [s, o, sz, st, _, _] | [s, o, sz, st, _, _, _] => (s, o, sz, st),
                _ => {
                    return Err(format!(
                        "_rebuild_tensor_v2 takes 6 or 7 arguments, got {}",
                        args.len()
                    ))
                }
            };
            let Value::Storage(storage) = storage else {
                return Err(format!(
                    "_rebuild_tensor_v2's storage is a {}",
                    storage.type_name()
                ));
            };
            let shape = size.as_uints("tensor size")?;
            let stride = stride.as_uints("tensor stride")?;
            if shape.len() != stride.len() {
                return Err(format!(
                    "tensor has {} sizes but {} strides",
                    shape.len(),
                    stride.len()
                ));
            }
            if shape.len() > MAX_DIMS {
                return Err(format!(
                    "tensor has {} dimensions (at most {MAX_DIMS})",
                    shape.len()
                ));
            }
            Ok(Value::Tensor(Rc::new(TensorRef {
                storage: (**storage).clone(),
                offset: offset.as_uint("storage offset")?,
                shape,
                stride,
            })))
        }
        Value::Global(Global::RebuildParameter) => match args.as_slice() {
            [t @ Value::Tensor(_), _, _] => Ok(t.clone()),
            _ => Err("_rebuild_parameter takes (tensor, requires_grad, hooks)".into()),
        },
        Value::Global(Global::Storage(_)) => {
            Err("a storage class is called directly; only persistent ids may make storages".into())
        }
        other => Err(format!(
            "REDUCE calls a {}, which is not callable here",
            other.type_name()
        )),
    }
}
