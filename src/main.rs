// The server allocates small strings and rows on many threads at once; glibc's malloc spent
// about a sixth of the operator cycle's CPU on its arenas (BENCHMARKS.md, HTTP cycle).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sheping::cli::main()
}
