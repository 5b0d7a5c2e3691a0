"""The main window: four panels as tabs, menus, and a status bar (device · model · queue)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from studio.core.jobs import JobState
from studio.core.load_memory import load_memory_details, load_memory_summary
from studio.core.settings import studio_home
from studio.plugin_api import ParamError
from studio.qt.bridge import EngineBridge
from studio.qt.dialogs.plugins import PluginsDialog
from studio.qt.dialogs.settings import SettingsDialog
from studio.qt.imaging import IMAGE_FILTER
from studio.qt.import_hook import lighten_pyside_import_hook
from studio.qt.panels.image import ImagePanel
from studio.qt.panels.latent import LatentPanel
from studio.qt.panels.music import MusicPanel
from studio.qt.panels.text import TextPanel
from studio.qt.widgets.message_bar import MessageBar


def device_name(device: str | None) -> str:
    """"cpu" -> "CPU", "cuda:0" -> "CUDA", "mps" -> "MPS"."""
    if not device:
        return "unknown"
    return str(device).split(":")[0].upper()


class MainWindow(QMainWindow):
    def __init__(self, context, parent=None):
        super().__init__(parent)
        lighten_pyside_import_hook()  # the libraries a model load imports later are read once, not cached
        self.context = context
        self.confirm_close = True
        self.setWindowTitle("Studio")
        self.resize(1360, 860)
        self.setMinimumSize(900, 600)
        self.bridge = EngineBridge(context.engine, self)
        self._closed = False
        self._prewarm_tries = 0

        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.info_bar = MessageBar(central)
        self.info_bar.setContentsMargins(8, 8, 8, 0)
        column.addWidget(self.info_bar)
        self.tabs = QTabWidget(central)
        self.tabs.setObjectName("panelTabs")
        self.tabs.setDocumentMode(True)
        self.image_panel = ImagePanel(context, self.bridge, self.tabs)
        self.tabs.addTab(self.image_panel, "Image")
        self.text_panel = TextPanel(context, self.bridge, self.tabs)
        self.tabs.addTab(self.text_panel, "Text")
        self.text_panel.use_as_image_prompt.connect(self.use_as_image_prompt)
        self.music_panel = MusicPanel(context, self.bridge, self.tabs)
        self.tabs.addTab(self.music_panel, "Music")
        self.latent_panel = LatentPanel(context, self.bridge, self.tabs)
        self.tabs.addTab(self.latent_panel, "Latent")
        # Engine events reach these panels' sessions on the GUI thread; the views redraw from them.
        for session in self.sessions():
            self.bridge.feed(session)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self._build_status_bar()
        self._build_menus()
        self.bridge.stateChanged.connect(self._on_state)
        self.bridge.modelLoaded.connect(self._on_model_loaded)
        self.bridge.queueChanged.connect(self._update_queue_label)
        self._update_queue_label()
        failures = self.context.registry.failures()
        if failures:
            names = ", ".join(e.name for e in failures)
            self.statusBar().showMessage(f"{len(failures)} plugin(s) failed to load ({names}); see Help → Plugins.",
                                         15000)

    # ----------------------------------------------------------------------------- chrome
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(True)
        self.device_label = QLabel("Device: unknown", self)
        self.device_label.setToolTip("Shown once a model has loaded")
        self.model_label = QLabel("Model: none loaded", self)
        # What the last load cost (peak RSS / VRAM), from the plugin's own measurement.
        self.memory_label = QLabel("", self)
        self.memory_label.hide()
        self.queue_label = QLabel("Queue: 0", self)
        for label in (self.device_label, self.model_label, self.memory_label, self.queue_label):
            label.setObjectName("statusItem")
            bar.addPermanentWidget(label)

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.open_action = QAction("&Open image…", self, shortcut=QKeySequence.StandardKey.Open,
                                   triggered=self.open_image)
        self.open_action.setStatusTip("Restore the generation parameters stored in a PNG")
        file_menu.addAction(self.open_action)
        file_menu.addSeparator()
        self.settings_action = QAction("&Settings…", self, shortcut=QKeySequence("Ctrl+,"),
                                       triggered=self.open_settings)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close))

        view = menu.addMenu("&View")
        for index in range(self.tabs.count()):
            view.addAction(QAction(self.tabs.tabText(index), self, shortcut=QKeySequence(f"Ctrl+{index + 1}"),
                                   triggered=lambda _=False, i=index: self.tabs.setCurrentIndex(i)))
        view.addSeparator()
        self.gallery_action = QAction("Show &gallery", self, checkable=True, checked=True)
        self.gallery_action.toggled.connect(self.image_panel.gallery.setVisible)
        view.addAction(self.gallery_action)
        view.addAction(QAction("&Fit image to window", self, shortcut=QKeySequence("Ctrl+0"),
                               triggered=lambda: self.image_panel.image_view.set_fit(True)))
        view.addAction(QAction("&Actual size", self, shortcut=QKeySequence("Ctrl+Alt+0"),
                               triggered=self.image_panel.image_view.actual_size))
        view.addSeparator()
        view.addAction(QAction("F&ull screen", self, shortcut=QKeySequence("F11"), checkable=True,
                               toggled=lambda on: self.showFullScreen() if on else self.showNormal()))

        help_menu = menu.addMenu("&Help")
        self.plugins_action = QAction("&Plugins…", self, triggered=self.show_plugins)
        help_menu.addAction(self.plugins_action)
        help_menu.addAction(QAction("&About Studio", self, triggered=self._about))

    # ----------------------------------------------------------------------------- actions
    def open_image(self, path: str | None = None) -> None:
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Open image (restore its parameters)", "", IMAGE_FILTER)
        if path:
            self.tabs.setCurrentWidget(self.image_panel)
            self.image_panel.restore_png(path)

    def sessions(self) -> tuple:
        """Every panel's session (each is fed the engine's events and may adopt a re-run)."""
        return (self.image_panel.session, self.text_panel.session, self.music_panel.session,
                self.latent_panel.session)

    def use_as_image_prompt(self, text: str) -> None:
        """The Text panel's "Use as image prompt": fill the Image panel's prompt and show it."""
        self.image_panel.session.set_value("prompt", text)
        self.tabs.setCurrentWidget(self.image_panel)
        self.statusBar().showMessage("Prompt sent to the Image panel.", 4000)

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.context.settings, self, on_saved=self._settings_saved)
        dialog.setModal(True)
        dialog.open()
        return dialog

    def _settings_saved(self, settings) -> None:
        self.context.apply_settings(settings)
        self.image_panel.refresh_model_hint()
        self.statusBar().showMessage("Settings saved.", 4000)

    def show_plugins(self) -> PluginsDialog:
        dialog = PluginsDialog(self.context.registry, self)
        dialog.open()
        return dialog

    def _about(self) -> None:
        QMessageBox.about(self, "About Studio",
                          "<b>Studio</b><br>Images, text, music and latent editing on local models.<br>"
                          f"Data folder: {studio_home()}<br>Outputs: {self.context.store.root}")

    # ----------------------------------------------------------------------------- prewarm
    PREWARM_DELAY_MS = 300

    def prewarm_when_shown(self, delay_ms: int | None = None) -> None:
        """Once the window is on screen, have the engine import the Image panel's libraries
        (torch, diffusers, …) on its worker thread, so the first Generate neither waits for
        that import nor stalls the window with it.  Never imports anything here; off when the
        Settings say so; a failed prewarm only means the first job imports as before."""
        if not self.context.settings.prewarm:
            return
        self._prewarm_tries = 0
        QTimer.singleShot(self.PREWARM_DELAY_MS if delay_ms is None else delay_ms, self._prewarm_if_shown)

    def _prewarm_if_shown(self) -> None:
        if self._closed:
            return
        handle = self.windowHandle()
        if (handle is None or not handle.isExposed()) and self._prewarm_tries < 20:
            self._prewarm_tries += 1  # not painted yet (or minimised): look again shortly
            QTimer.singleShot(250, self._prewarm_if_shown)
            return
        plugin = self.image_panel.session.plugin
        if plugin is not None:
            self.context.engine.prewarm(plugin.id)

    # ----------------------------------------------------------------------------- crash recovery
    def offer_unfinished(self) -> list:
        """Offer jobs left queued/running by the last session in the info bar (non-blocking)."""
        records = self.context.engine.unfinished_from_last_session()
        notices = " ".join(getattr(self.context, "notices", []))  # a damaged history moved aside...
        if not records:
            if notices:
                self.info_bar.show_message(notices, "warning")
            return []
        first = records[0]
        prompt = str(first.request.get("request", {}).get("prompt", "")).strip()
        what = f"“{prompt[:50]}”" if prompt else f"a {first.kind} job"
        text = (f"{len(records)} job(s) did not finish last time ({what}"
                f"{' and more' if len(records) > 1 else ''}).")
        self.info_bar.show_message(f"{notices} {text}" if notices else text, "info",
                                   [("Run again", lambda: self._resubmit(records)),
                                    ("Discard", lambda: self._discard(records))])
        return records

    def _resubmit(self, records) -> None:
        problems = []
        for record in records:
            try:
                job = self.context.engine.resubmit(record)
            except (ParamError, LookupError) as exc:
                self.context.engine.discard(record)
                problems.append(str(exc))
                continue
            for session in self.sessions():
                if session.kind is job.kind:  # its panel shows the re-run and its results
                    session.adopt(job)
        if problems:
            self.info_bar.show_message("Could not run again: " + " ".join(problems), "warning")
        else:
            self.info_bar.dismiss()
            self.statusBar().showMessage(f"Re-queued {len(records)} job(s).", 4000)

    def _discard(self, records) -> None:
        for record in records:
            self.context.engine.discard(record)
        self.info_bar.dismiss()

    # ----------------------------------------------------------------------------- status
    def _on_model_loaded(self, job, event) -> None:
        self.device_label.setText(f"Device: {device_name(event.device)}")
        self.device_label.setToolTip(event.device)
        self.model_label.setText(f"Model: {Path(event.source).name or event.source}")
        self.model_label.setToolTip(event.source)
        summary = load_memory_summary(event.memory)
        # A model that measured nothing must not show another model's figures.
        self.memory_label.setText(f"Load: {summary}" if summary else "")
        self.memory_label.setToolTip(load_memory_details(event.memory))
        self.memory_label.setVisible(bool(summary))

    def _on_state(self, job, event) -> None:
        state = event.state
        if state is JobState.LOADING:
            self.model_label.setText(f"Model: loading {Path(job.spec.model).name or job.spec.model}…")
        elif state is JobState.FAILED and job.failure is not None and job.failure.stage == "load":
            self.model_label.setText("Model: failed to load")

    def queue_length(self) -> int:
        return len(self.context.engine.queued())

    def _update_queue_label(self) -> None:
        waiting = self.queue_length()
        running = self.context.engine.current is not None
        self.queue_label.setText(f"Queue: {waiting}" + (" · 1 running" if running else ""))

    # ----------------------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:
        engine = self.context.engine
        if self.confirm_close and engine.current is not None:
            answer = QMessageBox.question(
                self, "Quit Studio?",
                "A job is still running; quitting stops it. Queued jobs will be offered again next time.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        event.accept()

    def shutdown(self) -> None:
        """Stop listening and shut the engine down (waits for the worker thread)."""
        if self._closed:
            return
        self._closed = True
        for panel in (self.text_panel, self.music_panel, self.latent_panel):
            panel.shutdown()
        self.bridge.close()
        self.context.close()
