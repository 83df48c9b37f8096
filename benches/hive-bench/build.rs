//! Compiles the libhivex walker (`c/hivex_walk.c`) and links libhivex. libhivex-dev is
//! required: without its header the build fails, saying which package to install.

fn main() {
    println!("cargo:rerun-if-changed=c/hivex_walk.c");
    let mut build = cc::Build::new();
    build.file("c/hivex_walk.c").opt_level(2).warnings(true);
    if let Err(e) = build.try_compile("hivex_walk") {
        panic!(
            "cannot compile the libhivex walker ({e}).\n\
             The hive benchmark needs libhivex's header and library: apt-get install -y libhivex-dev"
        );
    }
    println!("cargo:rustc-link-lib=hivex");
}
