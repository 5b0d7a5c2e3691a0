"""File → Settings: output folder, memory, device and loading options (Settings.save())."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.settings import Settings, studio_home
from studio.qt.icons import icon

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent=None, on_saved=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.on_saved = on_saved
        self.error: str = ""
        layout = QVBoxLayout(self)

        files = QGroupBox("Files", self)
        files_form = QFormLayout(files)
        row = QWidget(files)
        row_layout = QHBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        self.output_dir = QLineEdit(settings.output_dir, row)
        self.output_dir.setPlaceholderText(str(studio_home() / "outputs"))
        self.output_dir.setToolTip("Where results are saved (one folder per day). Empty = the default.")
        row_layout.addWidget(self.output_dir, 1)
        browse = QToolButton(row)
        browse.setIcon(icon("folder"))
        browse.setToolTip("Choose the output folder…")
        browse.clicked.connect(self._browse)
        row_layout.addWidget(browse)
        files_form.addRow("Output folder", row)
        layout.addWidget(files)

        models = QGroupBox("Models", self)
        form = QFormLayout(models)
        self.device = QComboBox(models)
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device)
        self.device.setToolTip("auto picks CUDA, then Apple MPS, then the CPU")
        form.addRow("Device", self.device)
        self.dtype = QComboBox(models)
        self.dtype.addItems(DTYPES)
        self.dtype.setCurrentText(settings.dtype)
        self.dtype.setToolTip("auto = half precision on GPUs, float32 on the CPU")
        form.addRow("Precision", self.dtype)
        self.memory_budget = QDoubleSpinBox(models)
        self.memory_budget.setRange(0.5, 1024.0)
        self.memory_budget.setSingleStep(0.5)
        self.memory_budget.setDecimals(1)
        self.memory_budget.setSuffix(" GB")
        self.memory_budget.setValue(float(settings.memory_budget_gb))
        self.memory_budget.setToolTip("Loaded models are kept in memory up to this size; the least recently "
                                      "used one is unloaded first.")
        form.addRow("Memory budget", self.memory_budget)
        self.allow_download = QCheckBox("Allow downloads of hub models", models)
        self.allow_download.setChecked(settings.allow_download)
        form.addRow("", self.allow_download)
        self.allow_pickle = QCheckBox("Allow pickle checkpoints (.ckpt/.bin; can run code — only trusted files)",
                                      models)
        self.allow_pickle.setChecked(settings.allow_pickle)
        form.addRow("", self.allow_pickle)
        self.trust_remote_code = QCheckBox("Trust remote code (a hub text model's own Python; only trusted models)",
                                           models)
        self.trust_remote_code.setChecked(settings.trust_remote_code)
        form.addRow("", self.trust_remote_code)
        self.prewarm = QCheckBox("Prepare the image libraries in the background after start-up "
                                 "(a quicker first Generate)", models)
        self.prewarm.setChecked(settings.prewarm)
        form.addRow("", self.prewarm)
        self.max_image = QDoubleSpinBox(models)
        self.max_image.setRange(1.0, 10_000.0)
        self.max_image.setDecimals(0)
        self.max_image.setSuffix(" megapixels")
        self.max_image.setValue(round(settings.max_image_pixels / 1e6))
        self.max_image.setToolTip("Images you open (init images, masks, images to edit) larger than this are "
                                  "refused before they are decoded: a small file can declare a huge image "
                                  "(a decompression bomb). Raise it for very large scans you trust.")
        form.addRow("Largest image", self.max_image)
        layout.addWidget(models)

        memory = QGroupBox("Low memory", self)
        memory_form = QFormLayout(memory)
        self.attention_slicing = QCheckBox("Attention slicing (less memory, a bit slower)", memory)
        self.attention_slicing.setChecked(settings.attention_slicing)
        memory_form.addRow(self.attention_slicing)
        self.vae_tiling = QCheckBox("VAE tiling (large images in tiles)", memory)
        self.vae_tiling.setChecked(settings.vae_tiling)
        memory_form.addRow(self.vae_tiling)
        self.cpu_offload = QCheckBox("Model CPU offload (CUDA only; slow but fits small GPUs)", memory)
        self.cpu_offload.setChecked(settings.cpu_offload)
        memory_form.addRow(self.cpu_offload)
        self.quantize = QComboBox(memory)
        self.quantize.addItems(("none", "int8", "fp8"))
        self.quantize.setCurrentText(settings.quantize if settings.quantize in ("none", "int8", "fp8") else "none")
        self.quantize.setToolTip("Weight-only quantization of the image denoiser and text encoders at load "
                                 "(needs torchao); the memory it saved is shown when the model loads")
        memory_form.addRow("Quantize weights", self.quantize)
        layout.addWidget(memory)

        note = QLabel("Changes apply to the next model load.", self)
        note.setObjectName("hint")
        layout.addWidget(note)
        self.error_label = QLabel(self)
        self.error_label.setStyleSheet("color: #f28b82;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
                                   self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_dir.text())
        if folder:
            self.output_dir.setText(folder)

    def apply(self) -> None:
        s = self.settings
        s.output_dir = self.output_dir.text().strip()
        s.device = self.device.currentText()
        s.dtype = self.dtype.currentText()
        s.memory_budget_gb = float(self.memory_budget.value())
        s.allow_download = self.allow_download.isChecked()
        s.allow_pickle = self.allow_pickle.isChecked()
        s.trust_remote_code = self.trust_remote_code.isChecked()
        s.prewarm = self.prewarm.isChecked()
        s.max_image_pixels = int(self.max_image.value() * 1_000_000)
        s.attention_slicing = self.attention_slicing.isChecked()
        s.vae_tiling = self.vae_tiling.isChecked()
        s.cpu_offload = self.cpu_offload.isChecked()
        s.quantize = self.quantize.currentText()

    def save(self) -> bool:
        self.apply()
        try:
            self.settings.save()
        except OSError as exc:
            self.error = f"Could not save the settings: {exc}"
            self.error_label.setText(self.error)
            self.error_label.show()
            return False
        if self.on_saved:
            self.on_saved(self.settings)
        self.accept()
        return True
