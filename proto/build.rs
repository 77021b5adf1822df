//! Compiles the `.proto` contract with the vendored `protoc`, so a fresh machine needs nothing installed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=weft/v1/weft.proto");
    tonic_prost_build::configure().compile_protos(&["weft/v1/weft.proto"], &["."])?;
    Ok(())
}
