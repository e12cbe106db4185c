//! The inert Cohort module: `plugin.wasm` re-encoded with its entry points pointed at functions that do nothing.

#[allow(unused_imports)]
use super::*;

/// Cohort's `plugin.wasm` with two functions appended, `() -> i64` returning
/// 1 (next, no context) and `(i32, i32) -> ()` doing nothing, and the
/// `handle_request`/`handle_response` exports pointed at them. Everything
/// else is Cohort's: the code Traefik compiles, `_start` parsing the
/// config, the memory each instance gets. Under reloads it shows what
/// Traefik's own per-reload cost is for a module of Cohort's size.
pub fn inert_cohort() -> Result<Vec<u8>> {
    use wasm_encoder::reencode::{self, Reencode};
    use wasmparser::{Parser, Payload, TypeRef};

    struct Inert {
        request_type: u32,
        response_type: u32,
        request_fn: u32,
        response_fn: u32,
    }

    impl Reencode for Inert {
        type Error = std::convert::Infallible;

        fn parse_type_section(
            &mut self,
            types: &mut wasm_encoder::TypeSection,
            section: wasmparser::TypeSectionReader<'_>,
        ) -> Result<(), reencode::Error<Self::Error>> {
            reencode::utils::parse_type_section(self, types, section)?;
            types.ty().function([], [wasm_encoder::ValType::I64]);
            types
                .ty()
                .function([wasm_encoder::ValType::I32, wasm_encoder::ValType::I32], []);
            Ok(())
        }

        fn parse_function_section(
            &mut self,
            functions: &mut wasm_encoder::FunctionSection,
            section: wasmparser::FunctionSectionReader<'_>,
        ) -> Result<(), reencode::Error<Self::Error>> {
            reencode::utils::parse_function_section(self, functions, section)?;
            functions.function(self.request_type);
            functions.function(self.response_type);
            Ok(())
        }

        fn parse_code_section(
            &mut self,
            code: &mut wasm_encoder::CodeSection,
            section: wasmparser::CodeSectionReader<'_>,
        ) -> Result<(), reencode::Error<Self::Error>> {
            reencode::utils::parse_code_section(self, code, section)?;
            let mut request = wasm_encoder::Function::new([]);
            request.instructions().i64_const(1).end();
            code.function(&request);
            let mut response = wasm_encoder::Function::new([]);
            response.instructions().end();
            code.function(&response);
            Ok(())
        }

        fn parse_export(
            &mut self,
            exports: &mut wasm_encoder::ExportSection,
            export: wasmparser::Export<'_>,
        ) -> Result<(), reencode::Error<Self::Error>> {
            let index = match export.name {
                "handle_request" => self.request_fn,
                "handle_response" => self.response_fn,
                _ => export.index,
            };
            exports.export(export.name, self.export_kind(export.kind)?, index);
            Ok(())
        }
    }

    let wasm = read_plugin()?;
    let (mut types, mut imported, mut defined) = (0u32, 0u32, 0u32);
    for payload in Parser::new(0).parse_all(&wasm) {
        match payload? {
            Payload::TypeSection(section) => {
                for group in section {
                    types += u32::try_from(group?.types().len())?;
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    if matches!(import?.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::FunctionSection(section) => defined = section.count(),
            _ => {}
        }
    }
    let mut inert = Inert {
        request_type: types,
        response_type: types + 1,
        request_fn: imported + defined,
        response_fn: imported + defined + 1,
    };
    let mut module = wasm_encoder::Module::new();
    inert
        .parse_core_module(&mut module, Parser::new(0), &wasm)
        .map_err(|e| anyhow!("re-encoding plugin.wasm: {e:?}"))?;
    Ok(module.finish())
}
