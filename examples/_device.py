"""The --device option shared by the training examples (train_cnn.py, train_gpt.py,
train_lstm.py): "auto" picks a usable GPU, else the CPU; "cpu" and "cuda[:i]" are taken as
given, checked up front so a typo or a missing GPU ends the run with one clear line."""
import bigmodel as bm

DEVICE_HELP = "auto (a GPU when usable, else cpu), cpu or cuda[:i]"


def add_device_arg(parser):
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def pick_device(requested="auto"):
    """The device to train on, as a string ("cpu", "cuda:0", ...).

    'auto': CUDA when bigmodel was built with it, a GPU is visible and tensors can live there
    (and, under mpirun, the process group can carry CUDA tensors: NCCL), else the CPU.
    Plain "cuda" is resolved to the current GPU, which under --ddp is the rank's own (the
    process group makes it current), so call this after init_process_group.
    """
    if requested == "auto":
        if bm.cuda.is_available() and not _mpi_only_job():
            try:
                bm.zeros(1).to(device="cuda")
                return str(bm.device("cuda"))
            except Exception:  # noqa: BLE001  (CUDA tensors not supported by this build)
                pass
        return "cpu"
    try:
        device = bm.device(requested)
    except (ValueError, RuntimeError, TypeError) as e:
        raise SystemExit(f"--device {requested!r}: {e} (expected {DEVICE_HELP})") from None
    if device.type == "cuda":
        if not bm.cuda.is_available():
            why = "this build has no CUDA" if not bm.cuda.built_with_cuda() else "no GPU is visible"
            raise SystemExit(f"--device {requested}: {why}; use --device cpu (or auto)")
        if device.index is not None and device.index >= bm.cuda.device_count():
            raise SystemExit(f"--device {requested}: only {bm.cuda.device_count()} GPU(s) visible")
    return str(device)


def _mpi_only_job():
    """True under a process group that carries CPU tensors only (backend "mpi", e.g. more
    ranks on a node than GPUs): data-parallel training must then stay on the CPU."""
    try:
        import bigmodel.distributed as dist
        return dist.is_initialized() and dist.get_backend() == "mpi"
    except (ImportError, RuntimeError):
        return False


def amp_device_type(device):
    """The device type autocast and GradScaler take ("cpu" or "cuda") for a device string."""
    return str(device).split(":")[0]
