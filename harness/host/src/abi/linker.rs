//! The linker table: every `http_handler` import bound to its host function
//! in one row, and the one wrapper ([`host_call`]) that counts the call,
//! splits guest memory from state and turns a fault into a trap.

use wasmtime::{Caller, Extern, Linker};

use super::functions::{self as f, HeaderOp};
use super::memory::{AbiTrap, Fault};
use super::state::HostState;
use super::table::{Import, MODULE};

/// Run one host function: count the call, split memory from state, and
/// turn a [`Fault`] into a trap that names the function.
fn host_call<R>(
    caller: &mut Caller<'_, HostState>,
    import: Import,
    f: impl FnOnce(&mut [u8], &mut HostState) -> Result<R, Fault>,
) -> wasmtime::Result<R> {
    let memory = match caller.data().memory {
        Some(memory) => Some(memory),
        None => caller.get_export("memory").and_then(Extern::into_memory),
    };
    let result = match memory {
        Some(memory) => {
            let (bytes, state) = memory.data_and_store_mut(&mut *caller);
            state.calls.0[import.index()] += 1;
            f(bytes, state)
        }
        None => {
            let state = caller.data_mut();
            state.calls.0[import.index()] += 1;
            f(&mut [], state)
        }
    };
    result.map_err(|Fault(message)| wasmtime::Error::new(AbiTrap { import, message }))
}

/// One `func_wrap` per row: `Import(param: type, ...) => |memory, state| body`.
macro_rules! link {
    ($linker:ident; $( $import:ident ( $($arg:ident : $ty:ty),* ) => |$mem:pat_param, $state:ident| $body:expr; )*) => {
        $(
            $linker.func_wrap(
                MODULE,
                Import::$import.name(),
                |mut c: Caller<'_, HostState>, $($arg: $ty),*| {
                    host_call(&mut c, Import::$import, |$mem, $state| $body)
                },
            )?;
        )*
    };
}

/// Define every `http_handler` function in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    link! { linker;
        EnableFeatures(features: u32) => |_, s| Ok(f::enable_features(s, features));
        GetConfig(buf: u32, limit: u32) => |mem, s| f::get_config(mem, s, buf, limit);
        LogEnabled(level: i32) => |_, s| Ok(f::log_enabled(s, level));
        Log(level: i32, ptr: u32, len: u32) => |mem, s| f::log(mem, s, level, ptr, len);
        GetMethod(buf: u32, limit: u32) => |mem, s| f::get_method(mem, s, buf, limit);
        SetMethod(ptr: u32, len: u32) => |mem, s| f::set_method(mem, s, ptr, len);
        GetUri(buf: u32, limit: u32) => |mem, s| f::get_uri(mem, s, buf, limit);
        SetUri(ptr: u32, len: u32) => |mem, s| f::set_uri(mem, s, ptr, len);
        GetProtocolVersion(buf: u32, limit: u32) => |mem, s| f::get_protocol_version(mem, s, buf, limit);
        GetSourceAddr(buf: u32, limit: u32) => |mem, s| f::get_source_addr(mem, s, buf, limit);
        GetHeaderNames(kind: u32, buf: u32, limit: u32) => |mem, s| f::get_header_names(mem, s, kind, buf, limit);
        GetHeaderValues(kind: u32, name: u32, name_len: u32, buf: u32, limit: u32) =>
            |mem, s| f::get_header_values(mem, s, kind, (name, name_len), buf, limit);
        SetHeaderValue(kind: u32, name: u32, name_len: u32, value: u32, value_len: u32) =>
            |mem, s| f::change_header(mem, s, HeaderOp::Set, kind, (name, name_len), (value, value_len));
        AddHeaderValue(kind: u32, name: u32, name_len: u32, value: u32, value_len: u32) =>
            |mem, s| f::change_header(mem, s, HeaderOp::Add, kind, (name, name_len), (value, value_len));
        RemoveHeader(kind: u32, name: u32, name_len: u32) =>
            |mem, s| f::change_header(mem, s, HeaderOp::Remove, kind, (name, name_len), (0, 0));
        ReadBody(kind: u32, buf: u32, limit: u32) => |mem, s| f::read_body(mem, s, kind, buf, limit);
        WriteBody(kind: u32, ptr: u32, len: u32) => |mem, s| f::write_body(mem, s, kind, ptr, len);
        GetStatusCode() => |_, s| f::get_status_code(s);
        SetStatusCode(code: u32) => |_, s| f::set_status_code(s, code);
    }
    Ok(())
}
