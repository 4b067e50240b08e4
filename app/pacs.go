package app

import (
	"context"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/io/dicomweb"
)

// openPACSDialog searches a DICOMweb server (QIDO-RS) and opens the chosen series; every
// request runs off the UI goroutine.
func (u *UI) openPACSDialog() {
	cfg, err := dicomweb.LoadConfig(dicomweb.ConfigPath())
	if err != nil {
		u.showError(err)
		return
	}
	server := widget.NewEntry()
	server.SetPlaceHolder("http://host:8042/dicom-web")
	server.SetText(u.A.Preferences().String("pacs.server"))
	if server.Text == "" && len(cfg.Servers) > 0 {
		server.SetText(cfg.Servers[0].URL)
	}
	name, pid, date, modality, acc := widget.NewEntry(), widget.NewEntry(), widget.NewEntry(), widget.NewEntry(), widget.NewEntry()
	name.SetPlaceHolder("Doe^J*")
	date.SetPlaceHolder("YYYYMMDD or YYYYMMDD-YYYYMMDD")
	modality.SetPlaceHolder("CT, MR…")
	status := widget.NewLabel("Credentials come from " + dicomweb.ConfigPath() + " or MEDSA_DICOMWEB_*.")
	status.Wrapping = fyne.TextWrapWord

	var studies []dicomweb.Study
	var series []dicomweb.Series
	var client *dicomweb.Client
	chosen := -1
	seriesList := widget.NewList(func() int { return len(series) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			s := series[i]
			o.(*widget.Label).SetText(fmt.Sprintf("%d  %s  %s  (%d images)", s.Number, s.Modality, s.Description, s.Instances))
		})
	seriesList.OnSelected = func(i widget.ListItemID) { chosen = i }
	studyList := widget.NewList(func() int { return len(studies) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			s := studies[i]
			o.(*widget.Label).SetText(fmt.Sprintf("%s  %s (%s)  %s  %s  %d series", s.Date, s.PatientName, s.PatientID,
				strings.Join(s.Modalities, ","), s.Description, s.Series))
		})
	studyList.OnSelected = func(i widget.ListItemID) {
		st, c := studies[i], client
		series, chosen = nil, -1
		seriesList.Refresh()
		status.SetText("Listing the series of " + st.Description + "…")
		go func() {
			list, err := c.SearchSeries(context.Background(), st.UID)
			u.do(func() {
				if err != nil {
					status.SetText(err.Error())
					return
				}
				series = list
				seriesList.Refresh()
				status.SetText(fmt.Sprintf("%d series", len(list)))
			})
		}()
	}
	search := widget.NewButton("Search", func() {
		c, err := pacsClientFor(cfg, server.Text)
		if err != nil {
			status.SetText(err.Error())
			return
		}
		client = c
		u.A.Preferences().SetString("pacs.server", c.Root)
		f := dicomweb.Filter{PatientName: name.Text, PatientID: pid.Text, Date: date.Text, Modality: modality.Text, Accession: acc.Text, Limit: 200}
		status.SetText("Searching " + c.Root + "…")
		go func() {
			list, err := c.SearchStudies(context.Background(), f)
			u.do(func() {
				if err != nil {
					status.SetText(err.Error())
					return
				}
				studies, series, chosen = list, nil, -1
				studyList.UnselectAll()
				studyList.Refresh()
				seriesList.Refresh()
				status.SetText(fmt.Sprintf("%d studies", len(list)))
			})
		}()
	})
	form := widget.NewForm(widget.NewFormItem("Server", server), widget.NewFormItem("Patient name", name),
		widget.NewFormItem("Patient ID", pid), widget.NewFormItem("Study date", date),
		widget.NewFormItem("Modality", modality), widget.NewFormItem("Accession", acc))
	lists := container.NewGridWithRows(2, container.NewBorder(widget.NewLabel("Studies"), nil, nil, nil, studyList),
		container.NewBorder(widget.NewLabel("Series"), nil, nil, nil, seriesList))
	body := container.NewBorder(container.NewVBox(form, search), status, nil, nil, lists)
	dlg := dialog.NewCustomConfirm("Open from PACS", "Open series", "Close", body, func(ok bool) {
		if !ok || chosen < 0 || chosen >= len(series) || client == nil {
			return
		}
		s := series[chosen]
		url := client.Root + "/studies/" + s.StudyUID + "/series/" + s.UID
		u.guardUnsaved(func() { u.Open(url, "") })
	}, u.W)
	dlg.Resize(fyne.NewSize(760, 640))
	dlg.Show()
}

func pacsClientFor(cfg *dicomweb.Config, server string) (*dicomweb.Client, error) {
	server = strings.TrimSpace(server)
	if server == "" {
		return nil, fmt.Errorf("enter the server's DICOMweb root, e.g. http://host:8042/dicom-web")
	}
	return dicomweb.NewClient(cfg.Lookup(server))
}
